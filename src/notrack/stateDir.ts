/** Where ctop notrack keeps its backups, pending records and locks (a leaf module: every command's options name it). */
export const DEFAULT_STATE_DIR = '/var/lib/ctop';
