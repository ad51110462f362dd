/** Shared plumbing for commands: the project folder, its workspace, and closing it. */
import { loadProject, type Project } from '../config/load.js';
import { openWorkspace, type Workspace } from '../project/workspace.js';

export interface GlobalOptions {
  readonly project?: string;
  readonly json?: boolean;
}

/**
 * The project folder: `--project`, else `FERRY_PROJECT`, else the current folder. Without a
 * ferry.yaml the defaults apply, so `ferry train` works in any folder (state goes to `.ferry/`).
 */
export function projectFrom(options: GlobalOptions): Project {
  const dir = options.project ?? process.env.FERRY_PROJECT ?? process.cwd();
  return loadProject(dir, { requireConfig: options.project !== undefined });
}

/** Opens the workspace, runs `fn`, and always closes it. */
export async function withWorkspace<T>(
  options: GlobalOptions,
  fn: (ws: Workspace) => Promise<T>,
): Promise<T> {
  const ws = await openWorkspace(projectFrom(options));
  try {
    return await fn(ws);
  } finally {
    await ws.close();
  }
}
