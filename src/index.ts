// The public API of kvmbox.
export { run, ProgramNotFoundError, DEFAULT_MEMORY_MIB, type RunOptions, type RunResult } from './api/run.js';
export { runRaw, type RawMode, type RawResult } from './machine/raw.js';
export { KvmUnavailableError } from './kvm/kvm.js';
export { NotRunnableError } from './linux/elf.js';
export { InterpreterNotFoundError } from './linux/interp.js';
export { GrantError } from './fs/vfs.js';
export type { ExitReason } from './linux/process.js';
export { doctor, formatDoctorReport, type DoctorReport, type KvmKind } from './api/doctor.js';
