import { SetMetadata } from '@nestjs/common';

export const PUBLIC_KEY = 'broker:public';
export const ALLOW_KEY = 'broker:allow';

/** Marks a route or operation as reachable without an API key (health, metrics, static files). */
export const Public = () => SetMetadata(PUBLIC_KEY, true);
