export * from './jobs.module';
export * from './linkage-jobs';
export * from './queues';
