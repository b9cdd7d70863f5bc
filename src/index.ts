// The public API of kvmbox.
export { runSync, ProgramNotFoundError, DEFAULT_MEMORY_MIB, DEFAULT_CAPTURE_LIMIT, type RunOptions, type RunResult } from './api/run.js';
export { run, configureEngine, engineStats, closeIdleWorkers, warmEngine, type EngineOptions, type EngineStats } from './api/engine.js';
export { spawn, Sandbox, type SpawnOptions } from './api/sandbox.js';
export { runRaw, type RawMode, type RawResult } from './machine/raw.js';
export { KvmUnavailableError } from './kvm/kvm.js';
export { NotRunnableError } from './linux/elf.js';
export { InterpreterNotFoundError } from './linux/interp.js';
export { GrantError } from './fs/vfs.js';
export { SYSTEM_GRANTS, systemGrants } from './fs/system.js';
export type { ExitReason } from './linux/process.js';
export { doctor, formatDoctorReport, type DoctorReport, type KvmKind } from './api/doctor.js';
