export * from './jobs.module';
export * from './maintenance.processor';
export * from './queues';
