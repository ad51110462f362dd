/**
 * Seeded pseudo-random numbers for training: splits, subsampling and shuffles must give the same
 * result for the same seed on every machine, which `Math.random` cannot promise.
 */

/**
 * A mulberry32 generator returning floats in [0, 1).
 * @example const rand = createRng(42); const u = rand();
 */
export function createRng(seed: number): () => number {
  let state = (Math.trunc(seed) ^ 0x9e3779b9) >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Fisher-Yates shuffle in place.
 * @example shuffleInPlace(Uint32Array.from([0, 1, 2]), createRng(1));
 */
export function shuffleInPlace<T extends { length: number; [i: number]: number }>(
  values: T,
  rand: () => number,
): T {
  for (let i = values.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const tmp = values[i] as number;
    values[i] = values[j] as number;
    values[j] = tmp;
  }
  return values;
}
