/** Reading and writing tables: the data module's public surface. */
export {
  readTable,
  readSource,
  formatOf,
  type ReadTableOptions,
  type SourceRead,
  type TableFormat,
} from './read.js';
export { writeCsv, writeTable, toCsv, toJsonLines } from './write.js';
export { withDuckDB, loadTable, resultToTable, quoteIdent, quoteString } from './duckdb.js';
