export * from './jobs.module';
export * from './linkage-jobs';
export * from './maintenance.processor';
export * from './queues';
