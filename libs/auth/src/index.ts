export * from './allow.decorator';
export * from './api-key';
export * from './auth.guard';
export * from './auth.hook';
export * from './auth.module';
export * from './auth.service';
export * from './request-context';
export * from './role.enum';
