/**
 * Implementing a package's HttpApi group inside any api that contains it: the one helper every package's `Http`
 * module uses, so that the glue is written once.
 *
 * A package declares its group (`HealthHttp.HealthGroup`, `CircuitBreakerHttp.Group`, …) and its handlers. A server adds
 * that group to its own api, possibly with middleware of its own (an admin role check, say), and the routes must be
 * built from the server's api, or the middleware would not run. {@link implement} takes the group and its handlers
 * once and returns the layer for any api that contains the group; the middleware that api added to the group is part
 * of the layer's requirements, and what that middleware provides per request (a principal) is not: handlers may
 * require it.
 *
 * @since 0.1.0
 */
import type { Layer } from "effect"
import type { HttpRouter } from "effect/http"
import { type HttpApi, HttpApiBuilder, type HttpApiEndpoint, type HttpApiGroup } from "effect/http-api"

/**
 * The services an api's copy of a group needs beyond its handlers: the middleware the api added to it.
 *
 * @since 0.1.0
 * @category models
 */
export type AddedMiddleware<Groups extends HttpApiGroup.Constraint, Id extends string> =
  | HttpApiGroup.MiddlewareServices<HttpApiGroup.WithIdentifier<Groups, Id>>
  | HttpApiEndpoint.Middleware<HttpApiGroup.Endpoints<HttpApiGroup.WithIdentifier<Groups, Id>>>

/**
 * What the middleware an api added to the group provides to its handlers per request (a principal, say): the
 * handlers' need for it is met by that middleware, so it is not a requirement of the layer.
 *
 * @since 0.1.0
 * @category models
 */
export type ProvidedByMiddleware<Groups extends HttpApiGroup.Constraint, Id extends string> = HttpRouter.Request.From<
  "Requires",
  HttpApiGroup.MiddlewareProvides<HttpApiGroup.WithIdentifier<Groups, Id>>
>

/**
 * The layer of `group` for an api that contains it.
 *
 * @since 0.1.0
 * @category models
 */
export type Implementation<Group extends HttpApiGroup.Constraint, E, R> = <
  ApiId extends string,
  Groups extends HttpApiGroup.Constraint
>(
  api:
    & HttpApi.HttpApi<ApiId, Groups>
    & (Group["identifier"] extends HttpApiGroup.Identifier<Groups> ? unknown
      : { readonly "the api must contain the group": Group["identifier"] })
) => Layer.Layer<
  HttpApiGroup.Service<ApiId, Group["identifier"]>,
  E,
  Exclude<R, ProvidedByMiddleware<Groups, Group["identifier"]>> | AddedMiddleware<Groups, Group["identifier"]>
>

/**
 * Implements `group` with `build` for any api that contains it. The handlers are typed by the package's own group;
 * middleware a server adds to the group changes neither their success nor their error types.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * import { HttpGroup } from "@ouroboros/kernel"
 * import { Effect, Schema } from "effect"
 * import { HttpApi, HttpApiEndpoint, HttpApiGroup } from "effect/http-api"
 *
 * class Group extends HttpApiGroup.make("ping").add(HttpApiEndpoint.get("ping", "/ping", { success: Schema.String })) {}
 * export const layer = HttpGroup.implement(Group, (handlers) => handlers.handle("ping", () => Effect.succeed("pong")))
 * class Api extends HttpApi.make("my-api").add(Group) {}
 * const PingLive = layer(Api)
 */
export const implement = <Group extends HttpApiGroup.Constraint, Return>(
  group: Group,
  build: (handlers: HttpApiBuilder.Handlers.FromGroup<Group>) => HttpApiBuilder.Handlers.ValidateReturn<Return>
): Implementation<Group, HttpApiBuilder.Handlers.Error<Return>, HttpApiBuilder.Handlers.Context<Return>> =>
(api) =>
  // Built from the caller's api, whose copy of the group carries the middleware it added.
  HttpApiBuilder.group(
    api as unknown as HttpApi.HttpApi<string, Group>,
    group.identifier as never,
    build as never
  ) as never
