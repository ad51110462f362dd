import { describe, expect, it } from 'vitest';
import type { NumericProfile } from '../core/profile.js';
import type { Scalar, Table } from '../core/table.js';
import { profileTable } from '../data/profile.js';
import { createRng } from '../training/random.js';
import { driftReport, driftStatus, psi } from './drift.js';

function normals(n: number, mean: number, seed: number): number[] {
  const rand = createRng(seed);
  return Array.from(
    { length: n },
    () => mean + Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand()),
  );
}

function reference(values: Scalar[]): NumericProfile {
  const p = profileTable({
    columns: [{ name: 'v', type: 'float', values }],
    rowCount: values.length,
  }).columns.v;
  if (p?.kind !== 'numeric') throw new Error('expected numeric');
  return p;
}

describe('psi', () => {
  it('is near zero for a fresh sample of the same distribution', () => {
    const ref = reference(normals(20000, 0, 1));
    expect(psi(ref, normals(20000, 0, 2))).toBeLessThan(0.01);
  });

  it('is large when the distribution shifts', () => {
    const ref = reference(normals(20000, 0, 1));
    expect(psi(ref, normals(5000, 1, 3))).toBeGreaterThan(0.25);
    const small = psi(ref, normals(5000, 0.2, 3));
    expect(small).toBeGreaterThan(0.02);
    expect(small).toBeLessThan(psi(ref, normals(5000, 1, 3)));
  });

  it('matches a hand computation, with nulls as their own bucket and epsilon for empty ones', () => {
    // Reference: bins [<1.5]: 2, [>=1.5]: 2, nulls: 0 -> 0.5, 0.5, 0.
    const ref = reference([1, 1, 2, 2]);
    const live: Scalar[] = [1, 2, 2, null];
    // Live: 0.25, 0.5, 0.25 (nulls); the empty reference null bucket counts as 1e-4.
    const expected =
      (0.25 - 0.5) * Math.log(0.25 / 0.5) + 0 + (0.25 - 1e-4) * Math.log(0.25 / 1e-4);
    expect(psi(ref, live)).toBeCloseTo(expected, 12);
  });

  it('counts values beyond the training range in the outer bins', () => {
    const ref = reference([1, 2, 3, 4]);
    expect(psi(ref, [-50, 2, 3, 500])).toBeCloseTo(0, 12);
  });

  it('compares categories through the top values, other and nulls', () => {
    const profile = profileTable({
      columns: [{ name: 'c', type: 'string', values: ['a', 'a', 'b', 'b'] }],
      rowCount: 4,
    }).columns.c;
    if (profile === undefined) throw new Error('missing profile');
    expect(psi(profile, ['a', 'b', 'a', 'b'])).toBeCloseTo(0, 12);
    expect(psi(profile, ['z', 'z', 'z', 'a'])).toBeGreaterThan(1);
  });

  it('is zero when there is nothing to compare', () => {
    expect(psi(reference([1, 2, 3]), [])).toBe(0);
  });
});

describe('driftReport', () => {
  it('rates each shared column against the 0.1 / 0.25 thresholds, in reference order', () => {
    const train: Table = {
      columns: [
        { name: 'stable', type: 'float', values: normals(10000, 0, 1) },
        { name: 'moved', type: 'float', values: normals(10000, 0, 2) },
        { name: 'gone', type: 'float', values: normals(10000, 0, 3) },
      ],
      rowCount: 10000,
    };
    const live: Table = {
      columns: [
        { name: 'moved', type: 'float', values: normals(3000, 1.5, 4) },
        { name: 'stable', type: 'float', values: normals(3000, 0, 5) },
      ],
      rowCount: 3000,
    };
    const report = driftReport(profileTable(train), live);
    expect(report.map((r) => r.column)).toEqual(['stable', 'moved']);
    expect(report[0]).toMatchObject({ column: 'stable', status: 'ok', liveCount: 3000 });
    expect(report[1]).toMatchObject({ column: 'moved', status: 'drift', liveCount: 3000 });
  });

  it('maps PSI values to statuses at the documented thresholds', () => {
    expect(driftStatus(0.099)).toBe('ok');
    expect(driftStatus(0.1)).toBe('warn');
    expect(driftStatus(0.2499)).toBe('warn');
    expect(driftStatus(0.25)).toBe('drift');
  });
});
