export * from './register-page';
export * from './register.controller';
export * from './register.service';
export * from './register.types';
export * from './row-filter-shape';
