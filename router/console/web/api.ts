/**
 * The console's only way to the router: fetch on this origin. The API key
 * lives in sessionStorage (this tab only, gone when it closes) and travels
 * in the Authorization header, never in a URL.
 */

const KEY_SLOT = "tensorclaw.apiKey";

/** An error answer of the router, with its OpenAI error message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function apiKey(): string | undefined {
  const k = sessionStorage.getItem(KEY_SLOT);
  return k === null || k === "" ? undefined : k;
}

export function setApiKey(key: string | undefined): void {
  if (key === undefined || key.trim() === "") sessionStorage.removeItem(KEY_SLOT);
  else sessionStorage.setItem(KEY_SLOT, key.trim());
}

/** Headers of a call, with the key when there is one. */
export function headers(extra: Record<string, string> = {}): Record<string, string> {
  const key = apiKey();
  return key === undefined ? extra : { ...extra, authorization: `Bearer ${key}` };
}

/** The message of an error answer (OpenAI shape), or the status line. */
export async function errorOf(res: Response): Promise<ApiError> {
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = (await res.json()) as { error?: { message?: unknown } };
    if (typeof body.error?.message === "string") message = body.error.message;
  } catch {
    // Not JSON: the status line says enough.
  }
  return new ApiError(res.status, message);
}

/** GET a JSON endpoint of this router. */
export async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  const res = await fetch(path, { headers: headers(), ...(signal ? { signal } : {}), cache: "no-store" });
  if (!res.ok) throw await errorOf(res);
  return (await res.json()) as T;
}
