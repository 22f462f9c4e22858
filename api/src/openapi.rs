//! The OpenAPI 3.1 document, generated from the route table and the types:
//! paths, methods, roles and summaries come from [`ROUTES`]; every body's
//! schema is derived (`utoipa::ToSchema`) from the Rust type that serializes
//! or parses it, so the document cannot drift from a handler's shape without
//! the schema test (`api/tests/openapi.rs`) failing.

use std::collections::BTreeMap;

use utoipa::openapi::path::{HttpMethod, OperationBuilder, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, Content, InfoBuilder, ObjectBuilder, OpenApi, OpenApiBuilder, Paths, Required, ResponseBuilder, ResponsesBuilder, Type};

use crate::errors::ErrorBody;
use crate::routes::{error, schema, Reply, ReplyBody, RouteSpec, Schemas, ROUTES};
use crate::security::Access;

/// The name of the bearer-key security scheme.
const BEARER: &str = "bearer";

/// The document served at `/openapi.json`.
pub fn openapi() -> OpenApi {
    let mut schemas = Schemas::new();
    let mut paths = Paths::new();
    for r in ROUTES {
        let method = match r.method {
            "GET" => HttpMethod::Get,
            "POST" => HttpMethod::Post,
            "DELETE" => HttpMethod::Delete,
            other => unreachable!("the route table uses GET, POST and DELETE only, not {other}"),
        };
        paths.add_path_operation(r.path, vec![method], operation(r, &mut schemas));
    }
    let mut components = ComponentsBuilder::new().security_scheme(BEARER, SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    for (name, schema) in schemas {
        components = components.schema(name, schema);
    }
    OpenApiBuilder::new()
        .info(InfoBuilder::new().title("allot decision service").version(env!("CARGO_PKG_VERSION")).build())
        .paths(paths)
        .components(Some(components.build()))
        .security(Some([SecurityRequirement::new(BEARER, Vec::<String>::new())]))
        .build()
}

/// The errors a route answers because of what it is, not what it does: a
/// missing or unknown key, a role that may not call it, a rejected JSON body.
fn shared_errors(r: &RouteSpec) -> Vec<Reply> {
    let mut out = Vec::new();
    if r.access != Access::Public {
        out.push(error(401, "No key, or an unknown one (`unauthorized`)."));
    }
    if let Access::Roles(_) = r.access {
        out.push(error(403, "The key's role may not call this route (`forbidden`)."));
    }
    if r.path.contains('{') {
        out.push(error(400, "A path parameter that is not UTF-8 once percent-decoded (`bad_request`)."));
    }
    out.push(error(408, "The request took longer than the service allows (`timeout`)."));
    out.push(error(414, "The request target is longer than 8 KiB (`uri_too_long`)."));
    if r.body.is_some() {
        out.push(error(400, "The body is not JSON (`bad_request`)."));
        out.push(error(413, "The body is larger than the route accepts (`payload_too_large`)."));
        out.push(error(415, "The body is not sent as `application/json` (`bad_request`)."));
        out.push(error(422, "The body does not have the request's shape (`bad_request`)."));
    }
    out
}

fn operation(r: &RouteSpec, schemas: &mut Schemas) -> utoipa::openapi::path::Operation {
    let mut params: Vec<Parameter> = r
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| ParameterBuilder::new().name(name).parameter_in(ParameterIn::Path).required(Required::True).schema(Some(ObjectBuilder::new().schema_type(Type::String))).build())
        .collect();
    if let Some(query) = r.query {
        params.extend(query());
    }
    // A route's own replies come last: they describe a shared status better.
    let mut replies = BTreeMap::new();
    for reply in shared_errors(r).into_iter().chain(r.replies.iter().copied()) {
        replies.insert(reply.status, reply);
    }
    let mut responses = ResponsesBuilder::new();
    for (status, reply) in replies {
        let content = match reply.body {
            ReplyBody::Json(schema) => ("application/json", Content::new(Some(schema(schemas)))),
            ReplyBody::Text => ("text/plain", Content::new(Some(ObjectBuilder::new().schema_type(Type::String)))),
        };
        responses = responses.response(status.to_string(), ResponseBuilder::new().description(reply.description).content(content.0, content.1).build());
    }
    let other = ResponseBuilder::new().description("Any other error: an internal error (500).");
    responses = responses.response("default", other.content("application/json", Content::new(Some(schema::<ErrorBody>(schemas)))).build());
    let mut op = OperationBuilder::new().summary(Some(r.summary)).parameters(Some(params)).responses(responses.build());
    if let Some(body) = r.body {
        op = op.request_body(Some(RequestBodyBuilder::new().required(Some(Required::True)).content("application/json", Content::new(Some(body(schemas)))).build()));
    }
    match r.access {
        Access::Public => op = op.securities(Some(Vec::<SecurityRequirement>::new())),
        Access::AnyKey => op = op.extensions(Some(roles(["any".to_string()]))),
        Access::Roles(roles_allowed) => {
            let names = roles_allowed.iter().map(|r| format!("{r:?}").to_lowercase()).chain(["admin".to_string()]);
            op = op.extensions(Some(roles(names)));
        }
    }
    op.build()
}

/// The `x-roles` extension: who may call a route (admin may call every one).
fn roles(names: impl IntoIterator<Item = String>) -> utoipa::openapi::extensions::Extensions {
    let names: Vec<String> = names.into_iter().collect();
    [("x-roles".to_string(), serde_json::Value::from(names))].into_iter().collect()
}
