import { setFlagsFromString } from "node:v8";

/**
 * Turns off V8's allocation-site pretenuring in a router process, before it
 * allocates its servers.
 *
 * With about 90 or more miners connected, V8 sees the objects of some
 * allocation sites live long (each tunnel's streams and state) and starts
 * allocating everything from those sites straight in the old generation,
 * a request's short-lived objects included (Node's stream and HTTP code
 * shares the sites). Dead old objects then keep young ones alive, and every
 * scavenge promoted the requests in flight: measured with 255 idle miners,
 * 25 % of young objects survived each scavenge instead of 3 %, scavenges
 * took 4-6 ms instead of 1.5-2.5, and the old generation grew to 100-200 MB
 * of garbage. Without pretenuring it stays at 6-7 % and 1.4-2 ms; with one
 * miner, 3 % and 1.5 ms (3-7 % and 2-3 ms with pretenuring). The bench:api
 * fleet variant measures it.
 *
 * Set at run time because Node takes no such V8 flag in NODE_OPTIONS; set
 * first thing, it took effect in every measurement above (Node 20).
 */
export function tuneRouterHeap(): void {
  setFlagsFromString("--no-allocation-site-pretenuring");
}
