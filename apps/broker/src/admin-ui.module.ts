import { type DynamicModule, Module } from '@nestjs/common';
import { ADMIN_UI_DIR, AdminUiController, AdminUiFiles, DEFAULT_ADMIN_UI_DIR } from './admin-ui';
import { GraphiqlController } from './graphiql';

/**
 * Serves the built admin UI at `/admin/`, and its GraphiQL page to browsers that open a GraphQL
 * endpoint, from `dir` (the build's output, `dist/admin` by default).
 */
@Module({})
export class AdminUiModule {
  static forRoot(dir: string = DEFAULT_ADMIN_UI_DIR): DynamicModule {
    return {
      module: AdminUiModule,
      controllers: [AdminUiController, GraphiqlController],
      providers: [{ provide: ADMIN_UI_DIR, useValue: dir }, AdminUiFiles],
    };
  }
}
