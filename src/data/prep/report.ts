/**
 * The preparation report: where every row went. For the read and for each step it gives rows in,
 * rows out and, per reason, the rows that left, so that at every stage
 * `rowsIn = rowsOut + sum(removed)`; conversions that failed (values read as null) are counted
 * per column. The object is plain JSON (`ferry data prep --json`); {@link formatPrepReport}
 * renders it for people.
 */
import type { StepSpec } from '../../config/data-schema.js';
import type { ColumnSchema } from '../../core/table.js';
import type { MalformedLine } from '../source.js';
import type { FittedStep } from './fitted.js';
import type { ValidationReport } from '../validate/index.js';
import type { RemovalReason } from './step.js';

/** Why rows left, per stage: a step's reasons, malformed lines at the read, validation's quarantine. */
export type RowLoss = RemovalReason | 'malformed' | 'quarantined';

export interface StageReport {
  /** `read`, `validate`, or the step kind. */
  readonly stage: string;
  /** 1-based position of the step in the recipe as written; 0 for the read, null for validation. */
  readonly index: number | null;
  /** What the stage did, in a few words. */
  readonly description: string;
  readonly rowsIn: number;
  readonly rowsOut: number;
  readonly removed: Partial<Record<RowLoss, number>>;
  /** Per column, non-missing values that did not convert and became null. */
  readonly conversionFailures: Readonly<Record<string, number>>;
  /** Rows per part, after a split. */
  readonly splits?: Readonly<Record<string, number>>;
  /** `applied` for row-wise steps; for batch-only steps, why request-time use skips them. */
  readonly requestTime?: string;
  readonly notes: readonly string[];
  readonly seconds: number;
}

export interface OutputFile {
  readonly path: string;
  /** The split part, when the recipe splits. */
  readonly part: string | null;
  readonly rows: number;
}

export interface PrepReport {
  readonly recipe: string;
  readonly source: {
    readonly name: string;
    readonly type: string;
    readonly path: string;
    /** Malformed CSV lines: how many, and the first ones with line number and reason. */
    readonly malformed: { readonly count: number; readonly examples: readonly MalformedLine[] };
  };
  /** The read, each step in the order run, and validation when the recipe has it. */
  readonly stages: readonly StageReport[];
  /** Where learned constants came from: the train part of the split, or every row. */
  readonly fittedOn: 'train' | 'all';
  readonly fitRows: number;
  /** The steps' order, when a split was moved before the first fitted step (see runRecipe). */
  readonly reordered: string | null;
  readonly validation: ValidationReport | null;
  readonly output: {
    readonly rows: number;
    readonly files: readonly OutputFile[];
    /** The fitted recipe written beside the output. */
    readonly fittedRecipe: string;
    readonly schema: readonly ColumnSchema[];
  };
  readonly seconds: number;
}

/**
 * A step in a few words, for progress lines and the report.
 * @example describeStep({ step: 'filter', where: 'amount > 0' }) // 'filter amount > 0'
 */
export function describeStep(spec: StepSpec): string {
  switch (spec.step) {
    case 'select':
    case 'drop':
      return `${spec.step} ${spec.columns.join(', ')}`;
    case 'rename':
      return `rename ${Object.entries(spec.columns)
        .map(([a, b]) => `${a} → ${b}`)
        .join(', ')}`;
    case 'cast': {
      const extra = [
        spec.format && `format ${spec.format}`,
        spec.timezone && `in ${spec.timezone}`,
        spec.unit && `unit ${spec.unit}`,
        spec.decimal && `decimal '${spec.decimal}'`,
        spec.thousands && `thousands '${spec.thousands}'`,
      ].filter(Boolean);
      return `cast ${spec.column} to ${spec.to}${extra.length ? ` (${extra.join(', ')})` : ''}`;
    }
    case 'fill':
      return `fill ${spec.columns.join(', ')} with ${spec.with === 'constant' ? JSON.stringify(spec.value) : spec.with}`;
    case 'drop_missing':
      return `drop rows missing ${spec.columns.join(', ')}`;
    case 'dedupe':
      return (
        `dedupe ${spec.columns ? `by ${spec.columns.join(', ')}` : 'exact rows'}, keep ${spec.keep}` +
        (spec.order_by ? ` by ${spec.order_by}` : ' in file order')
      );
    case 'filter':
      return `filter ${spec.where}`;
    case 'derive':
      return `derive ${spec.column} = ${spec.expr}`;
    case 'encode':
      return `encode ${spec.column} (${spec.method}${spec.min_count > 1 ? `, min_count ${spec.min_count}` : ''})`;
    case 'scale':
      return `scale ${spec.columns.join(', ')} (${spec.method})`;
    case 'clip':
      return `clip ${spec.columns.join(', ')} to quantiles ${spec.lower}..${spec.upper}`;
    case 'merge':
      return (
        `merge ${spec.source} on ${spec.on.join(', ')} (${spec.how}` +
        (spec.as_of ? `, as of ${spec.as_of.left} >= ${spec.as_of.right}` : '') +
        ')'
      );
    case 'split':
      return `split ${spec.method}${spec.column ? ` by ${spec.column}` : ''} ${spec.fractions.train}/${spec.fractions.validation}/${spec.fractions.test} (seed ${spec.seed})`;
  }
}

/** One line for a stage: rows in → out, and why any left. */
export function stageLine(stage: StageReport): string {
  const removed = Object.entries(stage.removed)
    .filter(([, n]) => (n ?? 0) > 0)
    .map(([why, n]) => `${n} ${why.replace('_', ' ')}`);
  const failures = Object.entries(stage.conversionFailures).map(
    ([column, n]) => `${n} not converted in ${column}`,
  );
  const splits = stage.splits
    ? [
        Object.entries(stage.splits)
          .map(([part, n]) => `${part} ${n}`)
          .join(', '),
      ]
    : [];
  const detail = [...removed, ...failures, ...splits, ...stage.notes];
  const label = stage.index ? `${stage.index}. ${stage.description}` : stage.description;
  return `${label}: ${stage.rowsIn} → ${stage.rowsOut} rows${detail.length ? ` (${detail.join('; ')})` : ''}`;
}

/** The report for the terminal. */
export function formatPrepReport(report: PrepReport): string {
  const lines = [
    `Recipe ${report.recipe} on ${report.source.path}`,
    ...report.stages.map((s) => `  ${stageLine(s)}`),
  ];
  for (const m of report.source.malformed.examples) {
    lines.push(`  malformed line ${m.line}: ${m.error}: ${m.message}`);
  }
  if (report.source.malformed.count > report.source.malformed.examples.length) {
    lines.push(
      `  ... and ${report.source.malformed.count - report.source.malformed.examples.length} more malformed lines`,
    );
  }
  if (report.reordered) lines.push(`  note: ${report.reordered}`);
  lines.push(
    `Fitted on ${report.fittedOn === 'train' ? 'the train part' : 'all rows'} (${report.fitRows} rows).`,
  );
  for (const file of report.output.files) {
    lines.push(`Wrote ${file.rows} rows to ${file.path}${file.part ? ` (${file.part})` : ''}`);
  }
  lines.push(`Fitted recipe: ${report.output.fittedRecipe}`);
  return lines.join('\n');
}

/** A fitted step in a few words (for a recipe applied again without its spec). */
export function describeFitted(step: FittedStep): string {
  switch (step.step) {
    case 'select':
    case 'drop':
    case 'drop_missing':
      return `${step.step} ${step.columns.join(', ')}`;
    case 'rename':
      return `rename ${Object.keys(step.columns).join(', ')}`;
    case 'cast':
      return `cast ${step.column} to ${step.to}`;
    case 'fill':
      return `fill ${step.values.map((v) => v.column).join(', ')} (${step.with})`;
    case 'dedupe':
      return `dedupe ${step.columns ? `by ${step.columns.join(', ')}` : 'exact rows'}, keep ${step.keep}`;
    case 'filter':
      return `filter ${step.where}`;
    case 'derive':
      return `derive ${step.column} = ${step.expr}`;
    case 'encode':
      return `encode ${step.column} (${step.method})`;
    case 'scale':
    case 'clip':
      return `${step.step} ${step.columns.map((c) => c.column).join(', ')}`;
    case 'merge':
      return `merge ${step.source} on ${step.on.join(', ')} (${step.how})`;
    case 'split':
      return `split ${step.method}`;
  }
}
