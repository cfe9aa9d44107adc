export * from './test-broker';
export * from './test-database';
