/**
 * A recording: a header and a series of snapshot windows, oldest first
 * (`ctop record`; io/recording.ts reads and writes its JSON Lines form).
 */
import type { SnapshotV1 } from './snapshot.js';

export const RECORDING_SCHEMA = 'ctop.recording/v1';

export interface RecordingHeader {
  schema: typeof RECORDING_SCHEMA;
  host: string;
  kernel: string;
  startedAt: string;
  everyMs: number;
  /** RAM of the recording host (os.totalmem()), if known. */
  memTotalBytes?: number;
  /** Word size of the recording host's kernel, 32 or 64, if known. */
  wordBits?: number;
}

export interface Recording {
  header: RecordingHeader;
  snapshots: SnapshotV1[];
}
