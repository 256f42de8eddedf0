/**
 * backoff returns the wait in milliseconds before reconnect attempt n (0 for
 * the first), with full jitter: a uniform draw from [0, min(max, base*2^n)].
 * random must return a number in [0, 1).
 */
export function backoff(n: number, base: number, max: number, random: () => number = Math.random): number {
  if (base <= 0 || max <= 0) return 0;
  const ceil = Math.min(max, base * 2 ** Math.min(n, 30));
  return Math.floor(random() * (ceil + 1));
}
