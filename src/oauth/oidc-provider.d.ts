// oidc-provider ships no types; Mandate touches a small part of it, typed loosely here on purpose:
// the configuration object is validated by oidc-provider itself at construction.
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  type Any = any;

  export default class Provider {
    constructor(issuer: string, configuration: Record<string, Any>);
    issuer: string;
    proxy: boolean;
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<Any>;
    interactionResult(req: IncomingMessage, res: ServerResponse, result: Record<string, Any>, options?: { mergeWithLastSubmission?: boolean }): Promise<string>;
    registerGrantType(name: string, handler: (ctx: Any) => Promise<void>, params?: string[] | Set<string>, dupes?: string[] | Set<string>): void;
    on(event: string, listener: (...args: Any[]) => void): this;
    use(middleware: (ctx: Any, next: () => Promise<void>) => Promise<void>): void;
    AccessToken: Any;
    ClientCredentials: Any;
    Client: Any;
    Grant: Any;
    Interaction: Any;
    Session: Any;
  }
  export const errors: Record<string, Any>;
}

declare module 'oidc-provider/lib/helpers/grants.js' {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  export const validateDpop: (provider: any, ctx: any) => Promise<any>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  export const checkDpopReplay: (provider: any, ctx: any, dPoP: any, clientId: string) => Promise<void>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  export const checkMtlsCert: (provider: any, ctx: any) => any;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  export const checkDpopRequired: (provider: any, ctx: any, dPoP: any) => void;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  export const buildTokenResponse: (provider: any, value: Record<string, any>) => Record<string, any>;
}
