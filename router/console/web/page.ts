/**
 * A console page: draws into `main` (given the route's parameters after the
 * page name) and returns what stops its timers and requests, if anything.
 */
export type Page = (main: HTMLElement, params: readonly string[]) => (() => void) | undefined;
