/**
 * Limited-memory BFGS for smooth convex objectives (logistic regression). Deterministic: no
 * randomness, fixed iteration order, so the same data gives the same weights.
 */

/** Returns f(w) and writes its gradient into `grad`. */
export type Objective = (w: Float64Array, grad: Float64Array) => number;

export interface LbfgsOptions {
  readonly maxIterations?: number;
  /** Stop when the largest gradient component falls below this (default 1e-6). */
  readonly gradientTolerance?: number;
  /**
   * Stop when a step lowers the objective by less than this share of it (default 1e-9, about
   * scipy's L-BFGS-B `factr` of 1e7): further steps move predictions by less than they matter.
   */
  readonly functionTolerance?: number;
  /** History pairs kept (default 10). */
  readonly memory?: number;
}

export interface LbfgsResult {
  readonly weights: Float64Array;
  readonly value: number;
  readonly iterations: number;
  readonly converged: boolean;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[i] as number);
  return s;
}

function maxAbs(a: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] as number));
  return m;
}

/**
 * Minimises `objective` from `initial` (not modified).
 * @example const { weights } = minimizeLbfgs((w, g) => { g[0] = 2 * (w[0]! - 3); return (w[0]! - 3) ** 2; }, new Float64Array(1));
 */
export function minimizeLbfgs(
  objective: Objective,
  initial: Float64Array,
  options: LbfgsOptions = {},
): LbfgsResult {
  const maxIterations = options.maxIterations ?? 500;
  const tol = options.gradientTolerance ?? 1e-6;
  const ftol = options.functionTolerance ?? 1e-9;
  const m = options.memory ?? 10;
  const n = initial.length;
  const w = Float64Array.from(initial);
  const g = new Float64Array(n);
  let f = objective(w, g);
  const sHist: Float64Array[] = [];
  const yHist: Float64Array[] = [];
  const rhoHist: number[] = [];
  const alpha = new Float64Array(m);
  const d = new Float64Array(n);
  const wNew = new Float64Array(n);
  const gNew = new Float64Array(n);
  let iterations = 0;
  let converged = maxAbs(g) < tol;
  while (!converged && iterations < maxIterations) {
    iterations++;
    // Two-loop recursion: d = -H g.
    for (let i = 0; i < n; i++) d[i] = -(g[i] as number);
    const k = sHist.length;
    for (let j = k - 1; j >= 0; j--) {
      const a = (rhoHist[j] as number) * dot(sHist[j] as Float64Array, d);
      alpha[j] = a;
      const y = yHist[j] as Float64Array;
      for (let i = 0; i < n; i++) d[i] = (d[i] as number) - a * (y[i] as number);
    }
    if (k > 0) {
      const s = sHist[k - 1] as Float64Array;
      const y = yHist[k - 1] as Float64Array;
      const gamma = dot(s, y) / dot(y, y);
      for (let i = 0; i < n; i++) d[i] = (d[i] as number) * gamma;
    } else {
      const scale = 1 / Math.max(1, Math.sqrt(dot(g, g)));
      for (let i = 0; i < n; i++) d[i] = (d[i] as number) * scale;
    }
    for (let j = 0; j < k; j++) {
      const b = (rhoHist[j] as number) * dot(yHist[j] as Float64Array, d);
      const s = sHist[j] as Float64Array;
      const a = alpha[j] as number;
      for (let i = 0; i < n; i++) d[i] = (d[i] as number) + (a - b) * (s[i] as number);
    }
    let slope = dot(g, d);
    if (!(slope < 0)) {
      // Not a descent direction (numerical trouble): restart from steepest descent.
      sHist.length = 0;
      yHist.length = 0;
      rhoHist.length = 0;
      for (let i = 0; i < n; i++) d[i] = -(g[i] as number);
      slope = dot(g, d);
    }
    // Backtracking line search with the Armijo condition.
    let step = 1;
    let fNew = Infinity;
    for (let tries = 0; tries < 40; tries++) {
      for (let i = 0; i < n; i++) wNew[i] = (w[i] as number) + step * (d[i] as number);
      fNew = objective(wNew, gNew);
      if (fNew <= f + 1e-4 * step * slope) break;
      step *= 0.5;
    }
    if (!(fNew <= f)) break;
    const s = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      s[i] = (wNew[i] as number) - (w[i] as number);
      y[i] = (gNew[i] as number) - (g[i] as number);
    }
    const sy = dot(s, y);
    if (sy > 1e-12) {
      if (sHist.length === m) {
        sHist.shift();
        yHist.shift();
        rhoHist.shift();
      }
      sHist.push(s);
      yHist.push(y);
      rhoHist.push(1 / sy);
    }
    const decrease = f - fNew;
    w.set(wNew);
    g.set(gNew);
    f = fNew;
    converged = maxAbs(g) < tol || decrease <= ftol * Math.max(1, Math.abs(f));
  }
  return { weights: w, value: f, iterations, converged };
}
