/** A small seeded PRNG (mulberry32) so distribution tests are reproducible. */
export { seededRandom } from "../../common/seeded-random.js";
