/**
 * The public tabular data sets of the quality benchmark (`quality.bench.ts`), read offline from
 * vega-datasets and scikit-learn's bundled files. Each loader returns a Table of the target and
 * the feature columns only: ids, free text, leaks (costs known after the fact) and raw dates are
 * dropped here, and a date that carries a season becomes a month number. Rows with a null target
 * are kept: the benchmark drops them before splitting, for both trainers alike.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import {
  getColumn,
  inferType,
  tableFromRows,
  type Column,
  type Row,
  type Scalar,
  type Table,
} from '../src/core/table.js';
import { quoteString, resultToTable, withDuckDB } from '../src/data/duckdb.js';
import { readTable } from '../src/data/read.js';

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const VEGA = path.join(ROOT, 'node_modules/vega-datasets/data');
const SKLEARN = '/usr/lib/python3/dist-packages/sklearn/datasets/data';

export type QualityTask = 'binary' | 'multiclass' | 'regression';

export interface QualityDataset {
  readonly name: string;
  readonly task: QualityTask;
  readonly target: string;
  /** Where the rows come from and what was dropped or derived, for the report. */
  readonly about: string;
  /** `scale` is FERRY_BENCH_SCALE; only the large sets use it. */
  load(scale: number): Promise<Table>;
}

/** Rows of flights-3m.parquet read at scale 1: the file's first million (January to mid-February 2001). */
export const FLIGHTS_ROWS = 1_000_000;

function vegaJson(file: string): Row[] {
  return JSON.parse(readFileSync(path.join(VEGA, file), 'utf8')) as Row[];
}

/** A table of `names` from row objects, each column typed from its values as JSON input is. */
function fromRows(rows: readonly Row[], names: readonly string[]): Table {
  return tableFromRows(
    names.map((name) => ({ name, type: inferType(rows.map((r) => r[name] ?? null)) })),
    rows,
  );
}

function without(table: Table, drop: readonly string[]): Table {
  const missing = drop.filter((name) => getColumn(table, name) === undefined);
  // A renamed column in a new vega-datasets release must not silently keep a leak in.
  if (missing.length > 0) throw new Error(`columns not found to drop: ${missing.join(', ')}`);
  return { rowCount: table.rowCount, columns: table.columns.filter((c) => !drop.includes(c.name)) };
}

/**
 * A numeric CSV of scikit-learn's: `names` for its columns, the last one the target. `header`
 * skips scikit-learn's first line (row and column counts, class names); `separator` is a
 * regular expression (the diabetes file is space-separated).
 */
function sklearnCsv(
  text: string,
  names: readonly string[],
  header: boolean,
  separator = /,/,
): Table {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const body = header ? lines.slice(1) : lines;
  const values: Scalar[][] = names.map(() => new Array<Scalar>(body.length));
  body.forEach((line, i) => {
    const cells = line.trim().split(separator);
    if (cells.length !== names.length) {
      throw new Error(`expected ${names.length} values, got ${cells.length} on line ${i + 1}`);
    }
    cells.forEach((cell, j) => ((values[j] as Scalar[])[i] = Number(cell)));
  });
  const columns: Column[] = names.map((name, j) => ({
    name,
    type: inferType(values[j] as Scalar[]),
    values: values[j] as Scalar[],
  }));
  return { rowCount: body.length, columns };
}

function sklearnText(file: string): string {
  const bytes = readFileSync(path.join(SKLEARN, file));
  return file.endsWith('.gz') ? gunzipSync(bytes).toString('utf8') : bytes.toString('utf8');
}

/** The month (1-12, UTC) of a timestamp column, as an int column of that name. */
function monthOf(column: Column, name: string): Column {
  return {
    name,
    type: 'int',
    values: column.values.map((v) =>
      typeof v === 'number' ? new Date(v).getUTCMonth() + 1 : null,
    ),
  };
}

/** scikit-learn's names for the 30 breast cancer features: mean, error and worst of ten. */
const BREAST_CANCER_NAMES = ['mean', 'error', 'worst'].flatMap((stat) =>
  [
    'radius',
    'texture',
    'perimeter',
    'area',
    'smoothness',
    'compactness',
    'concavity',
    'concave points',
    'symmetry',
    'fractal dimension',
  ].map((f) => (stat === 'error' ? `${f} error` : `${stat} ${f}`)),
);

const WINE_NAMES = [
  'alcohol',
  'malic_acid',
  'ash',
  'alcalinity_of_ash',
  'magnesium',
  'total_phenols',
  'flavanoids',
  'nonflavanoid_phenols',
  'proanthocyanins',
  'color_intensity',
  'hue',
  'od280/od315_of_diluted_wines',
  'proline',
];

export const DATASETS: readonly QualityDataset[] = [
  {
    name: 'penguins',
    task: 'multiclass',
    target: 'Species',
    about: 'vega penguins.json; Island and Sex are strings',
    load: () =>
      Promise.resolve(
        fromRows(vegaJson('penguins.json'), [
          'Species',
          'Island',
          'Beak Length (mm)',
          'Beak Depth (mm)',
          'Flipper Length (mm)',
          'Body Mass (g)',
          'Sex',
        ]),
      ),
  },
  {
    name: 'cars',
    task: 'regression',
    target: 'Miles_per_Gallon',
    about: 'vega cars.json; Name dropped; Year (a date) as its calendar year; Origin a string',
    load: () => {
      const rows = vegaJson('cars.json').map((r) => ({
        ...r,
        Year:
          r.Year === null || r.Year === undefined
            ? null
            : new Date(String(r.Year)).getUTCFullYear(),
      }));
      return Promise.resolve(
        fromRows(rows, [
          'Miles_per_Gallon',
          'Cylinders',
          'Displacement',
          'Horsepower',
          'Weight_in_lbs',
          'Acceleration',
          'Year',
          'Origin',
        ]),
      );
    },
  },
  {
    name: 'breast_cancer',
    task: 'binary',
    target: 'target',
    about: 'scikit-learn breast_cancer.csv (30 numbers; target 0 malignant, 1 benign)',
    load: () =>
      Promise.resolve(
        sklearnCsv(sklearnText('breast_cancer.csv'), [...BREAST_CANCER_NAMES, 'target'], true),
      ),
  },
  {
    name: 'wine',
    task: 'multiclass',
    target: 'target',
    about: 'scikit-learn wine_data.csv (13 numbers, 3 classes)',
    load: () =>
      Promise.resolve(sklearnCsv(sklearnText('wine_data.csv'), [...WINE_NAMES, 'target'], true)),
  },
  {
    name: 'digits',
    task: 'multiclass',
    target: 'digit',
    about: 'scikit-learn digits.csv.gz (8×8 pixel counts 0-16, 10 classes)',
    load: () => {
      const pixels = Array.from({ length: 64 }, (_, i) => `pixel_${i >> 3}_${i & 7}`);
      return Promise.resolve(sklearnCsv(sklearnText('digits.csv.gz'), [...pixels, 'digit'], false));
    },
  },
  {
    name: 'diabetes',
    task: 'regression',
    target: 'progression',
    about:
      'scikit-learn diabetes_data_raw.csv.gz + diabetes_target.csv.gz (10 raw numbers; sex as 1/2)',
    load: () => {
      const names = ['age', 'sex', 'bmi', 'bp', 's1', 's2', 's3', 's4', 's5', 's6'];
      const x = sklearnCsv(sklearnText('diabetes_data_raw.csv.gz'), names, false, /\s+/);
      const y = sklearnCsv(sklearnText('diabetes_target.csv.gz'), ['progression'], false);
      if (x.rowCount !== y.rowCount) throw new Error('diabetes: data and target lengths differ');
      return Promise.resolve({ rowCount: x.rowCount, columns: [...y.columns, ...x.columns] });
    },
  },
  {
    name: 'seattle_weather',
    task: 'multiclass',
    target: 'weather',
    about: 'vega seattle-weather.csv; date replaced by its month (1-12), the year dropped',
    load: async () => {
      const table = await readTable(path.join(VEGA, 'seattle-weather.csv'));
      const date = getColumn(table, 'date');
      if (date === undefined) throw new Error('seattle-weather.csv has no date column');
      const rest = without(table, ['date']);
      return { rowCount: table.rowCount, columns: [monthOf(date, 'month'), ...rest.columns] };
    },
  },
  {
    name: 'movies',
    task: 'regression',
    target: 'IMDB Rating',
    about:
      'vega movies.json; Title, Director and Release Date dropped; MPAA Rating, Distributor, ' +
      'Source, Major Genre, Creative Type are strings; many nulls',
    load: () =>
      Promise.resolve(
        fromRows(vegaJson('movies.json'), [
          'IMDB Rating',
          'US Gross',
          'Worldwide Gross',
          'US DVD Sales',
          'Production Budget',
          'MPAA Rating',
          'Running Time min',
          'Distributor',
          'Source',
          'Major Genre',
          'Creative Type',
          'Rotten Tomatoes Rating',
          'IMDB Votes',
        ]),
      ),
  },
  {
    name: 'birdstrikes',
    task: 'multiclass',
    target: 'Effect Amount of damage',
    about:
      'vega birdstrikes.csv (10k rows); Cost Other, Cost Repair, Cost Total $ (known after the ' +
      'damage: a leak) and Flight Date dropped; 9 string columns',
    load: async () =>
      without(await readTable(path.join(VEGA, 'birdstrikes.csv')), [
        'Cost Other',
        'Cost Repair',
        'Cost Total $',
        'Flight Date',
      ]),
  },
  {
    name: 'flights',
    task: 'binary',
    target: 'delayed',
    about:
      `vega flights-3m.parquet, the first ${FLIGHTS_ROWS.toLocaleString('en-US')} rows × FERRY_BENCH_SCALE ` +
      '(file order: from 1 January 2001); target delay > 15 min; features departure hour (fractional), ' +
      'day of week, day of month, distance, origin and destination (strings, ~230 airports each)',
    load: async (scale) => {
      const rows = Math.max(1000, Math.round(FLIGHTS_ROWS * scale));
      const file = path.join(VEGA, 'flights-3m.parquet');
      return withDuckDB(async (connection) =>
        resultToTable(
          await connection.run(
            `SELECT (delay > 15)::INTEGER AS delayed,
                    hour(date) + minute(date) / 60.0 AS dep_hour,
                    dayofweek(date)::INTEGER AS day_of_week,
                    day(date)::INTEGER AS day_of_month,
                    distance::DOUBLE AS distance, origin, destination
             FROM read_parquet(${quoteString(file)}) LIMIT ${rows}`,
          ),
        ),
      );
    },
  },
];
