// What the shared test harness's globalSetup provides. Delete this file once the harness declares it.
import 'vitest';

declare module 'vitest' {
  interface ProvidedContext {
    postgres: {
      host: string;
      port: number;
      database: string;
      admin: { user: string; password: string };
      users: {
        scram: { user: string; password: string };
        md5: { user: string; password: string };
        clear: { user: string; password: string };
        trust: { user: string };
      };
      caFile: string;
      certFile: string;
      keyFile: string;
      socketDir: string;
      binDir: string;
    };
  }
}
