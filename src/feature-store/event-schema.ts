/**
 * The input schema of a feature set's streamed events (JSON objects from HTTP or the event bus).
 * A file carries its own column types; a JSON event does not, and a type guessed from the values
 * of one batch could differ in the next (a field absent or null throughout a batch, `5` in one and
 * `"5"` in another), so the compiled ingestion plan would change from batch to batch and from one
 * process start to the next. The types are therefore taken only from declarations, later ones
 * winning: the entity key (string), the timestamp (timestamp: ISO 8601 text or UTC milliseconds),
 * `event_id` (string), each feature by its type, the source's `schema:`, then `event_schema:`.
 *
 * Only the columns the feature set reads become input columns: those its steps read before any
 * step makes them (a rename's target or a derived column is made, not read), then those its rules
 * and the stores need after the steps. Any other field of an event is ignored. A column that is
 * read but declared nowhere is a configuration error naming it and the fix.
 */
import type { ValidationSpec } from '../config/data-schema.js';
import type { FeatureSetSpec } from '../config/schema.js';
import type { ColumnSchema, ColumnType } from '../core/table.js';
import { parseExpression, type Expr } from '../data/expr/index.js';
import { FerryError } from '../errors/index.js';
import { EVENT_ID_COLUMN } from './ingestion.js';

/**
 * The columns (with their types) that streamed events of `featureSet` are read by.
 * @example eventInputSchema(fs, 'card_id', null) // [{ name: 'card_id', type: 'string' }, { name: 'ts', type: 'timestamp' }, ...]
 */
export function eventInputSchema(
  featureSet: FeatureSetSpec,
  keyColumn: string,
  ruleSet: ValidationSpec | null,
): ColumnSchema[] {
  const declared = new Map<string, ColumnType>([
    [keyColumn, 'string'],
    [featureSet.timestamp, 'timestamp'],
    [EVENT_ID_COLUMN, 'string'],
  ]);
  for (const f of featureSet.features) declared.set(f.name, f.type);
  for (const [name, type] of Object.entries(featureSet.source?.schema ?? {}))
    declared.set(name, type);
  for (const [name, type] of Object.entries(featureSet.event_schema ?? {}))
    declared.set(name, type);

  const input: ColumnSchema[] = [];
  const undeclared: string[] = [];
  /** Columns present at the current step. */
  const current = new Set<string>();
  /** Columns a step removed or renamed away: a later need of one is the steps' error, not an input. */
  const gone = new Set<string>();
  /** Once a `select` has run, no column can come from the input any more. */
  let closed = false;
  const need = (name: string): void => {
    if (current.has(name) || gone.has(name) || closed) return;
    current.add(name);
    const type = declared.get(name);
    if (type === undefined) undeclared.push(name);
    else input.push({ name, type });
  };
  const remove = (name: string): void => {
    current.delete(name);
    gone.add(name);
  };

  for (const step of featureSet.steps) {
    switch (step.step) {
      case 'select':
        step.columns.forEach(need);
        for (const name of [...current]) if (!step.columns.includes(name)) remove(name);
        closed = true;
        break;
      case 'drop':
        step.columns.forEach(need);
        step.columns.forEach(remove);
        break;
      case 'rename': {
        const pairs = Object.entries(step.columns);
        for (const [from] of pairs) need(from);
        for (const [from] of pairs) remove(from);
        for (const [, to] of pairs) {
          current.add(to);
          gone.delete(to);
        }
        break;
      }
      case 'cast':
        need(step.column);
        break;
      case 'fill':
      case 'drop_missing':
        step.columns.forEach(need);
        break;
      case 'filter':
        columnsOf(step.where).forEach(need);
        break;
      case 'derive':
        columnsOf(step.expr).forEach(need);
        current.add(step.column);
        gone.delete(step.column);
        break;
      default:
        // Steps a feature set refuses (compileIngestion says why) read nothing here.
        break;
    }
  }

  // After the steps: what the stores need, the optional event id, and what the rules read.
  need(keyColumn);
  need(featureSet.timestamp);
  for (const f of featureSet.features) need(f.name);
  need(EVENT_ID_COLUMN);
  for (const rule of ruleSet?.rules ?? []) {
    if ('column' in rule) need(rule.column);
    else if (rule.rule === 'unique') rule.columns.forEach(need);
    else if (rule.rule === 'expression') columnsOf(rule.check).forEach(need);
  }

  if (undeclared.length > 0) {
    const listed = undeclared.map((c) => `'${c}'`).join(', ');
    const example = undeclared.map((c) => `${c}: <type>`).join(', ');
    throw new FerryError(
      'FERRY_CONFIG_INVALID',
      `feature set '${featureSet.name}' reads column(s) ${listed} of streamed events, but no type is declared for them ` +
        `(JSON values alone do not fix a column's type from one batch to the next); ` +
        `declare them in ferry.yaml: event_schema: { ${example} } with types float, int, bool, string or timestamp`,
    );
  }
  return input;
}

/** Column names an expression reads; none when it does not parse (compiling the steps reports that). */
function columnsOf(source: string): string[] {
  let expr: Expr;
  try {
    expr = parseExpression(source);
  } catch {
    return [];
  }
  const names: string[] = [];
  const visit = (e: Expr): void => {
    switch (e.kind) {
      case 'column':
        names.push(e.name);
        break;
      case 'unary':
      case 'is_null':
        visit(e.operand);
        break;
      case 'binary':
        visit(e.left);
        visit(e.right);
        break;
      case 'in':
        visit(e.operand);
        e.values.forEach(visit);
        break;
      case 'call':
        e.args.forEach(visit);
        break;
      default:
        break;
    }
  };
  visit(expr);
  return names;
}
