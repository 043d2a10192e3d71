import type { Chain } from "../../common/chain/chain.js";

/**
 * A chain as a runtime from before timelocked commits shows it: no
 * `commit_timelocked_weights`, so no commit-reveal version in the
 * metagraph. The metadata fixture's runtime has the call; wrapping it this
 * way keeps the hash scheme (commit_weights / reveal_weights) under test.
 */
export function hashSchemeOnly(chain: Chain): Chain {
  return {
    readMetagraph: async (netuid) => {
      const { commitRevealVersion: _, ...mg } = await chain.readMetagraph(netuid);
      return mg;
    },
    setWeights: (...a) => chain.setWeights(...a),
    commitWeights: (...a) => chain.commitWeights(...a),
    commitTimelockedWeights: () => Promise.reject(new Error("this runtime has no commit_timelocked_weights")),
    revealWeights: (...a) => chain.revealWeights(...a),
    close: () => chain.close(),
  };
}
