export * from './agreement-status';
export * from './agreement.model';
export * from './agreement.service';
export * from './agreements.module';
export * from './record-index-keeper';
export * from './register';
