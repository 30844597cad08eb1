//! Procedural macros of faas-sdk.
//!
//! This crate holds `#[handler]`, re-exported as `#[faas::handler]` by the `faas-sdk` crate (library
//! name `faas`). Use it through `faas`, not directly: the generated code refers to `::faas::` paths.
//!
//! ```text
//! #[faas::handler]
//! async fn hello(req: faas::Request) -> String {
//!     format!("Hello from {}", req.uri().path())
//! }
//! ```

use proc_macro::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, ReturnType, Type, parse_macro_input};

/// Turns an async function into a function binary: generates `main`, which serves the function with
/// `faas::run` on `PORT` (default 8080) under the watchdog's HTTP contract.
///
/// The function itself is left unchanged, so tests can call it directly. Supported shapes:
///
/// | shape | served as |
/// |---|---|
/// | `async fn() -> impl IntoResponse` | `faas::handler_fn(\|_req\| f())` |
/// | `async fn(faas::Request) -> impl IntoResponse` | `faas::handler_fn(f)` |
/// | `async fn(faas::Request, faas::Context) -> impl IntoResponse` | `faas::context_fn(f)` |
/// | `async fn(E, faas::Context) -> Result<O, Err>` (`E: DeserializeOwned`, `O: Serialize`) | `faas::event_fn(f)` |
///
/// Anything else (a non-async fn, generics, a `self` receiver, more than two arguments, a reference or
/// `impl Trait` argument, `Context` in first place, a typed event handler not returning a `Result`, a
/// typed event that is not `DeserializeOwned`, an output that is not `Serialize`, an error that is not
/// `Into<faas::Error>`) is a compile error pointing at the offending code.
#[proc_macro_attribute]
pub fn handler(attr: TokenStream, item: TokenStream) -> TokenStream {
    let attr = proc_macro2::TokenStream::from(attr);
    let func = parse_macro_input!(item as ItemFn);
    match expand(attr, func.clone()) {
        Ok(tokens) => tokens.into(),
        Err(err) => on_error(&func, &err).into(),
    }
}

/// On misuse: the error, the user's function unchanged (so that the code calling it still
/// resolves), and an empty `main` so that "`main` function not found" does not bury the error.
fn on_error(func: &ItemFn, err: &syn::Error) -> proc_macro2::TokenStream {
    let error = err.to_compile_error();
    let is_method = func.sig.receiver().is_some();
    let stub = if is_method || func.sig.ident == "main" {
        quote! {}
    } else {
        quote! { fn main() {} }
    };
    quote! {
        #error
        #func
        #stub
    }
}

/// What an argument of the handler is, judged by the last segment of its type path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arg {
    /// `faas::Request` (or `http::Request<faas::Body>` spelled `Request<..>`).
    Request,
    /// `faas::Context`.
    Context,
    /// Any other owned type: a JSON event.
    Event,
}

/// The handler shapes the macro supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    NoArgs,
    Request,
    RequestContext,
    EventContext,
}

fn expand(attr: proc_macro2::TokenStream, func: ItemFn) -> syn::Result<proc_macro2::TokenStream> {
    if !attr.is_empty() {
        return Err(syn::Error::new_spanned(
            attr,
            "#[faas::handler] takes no arguments",
        ));
    }
    let sig = &func.sig;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new_spanned(
            sig.fn_token,
            "#[faas::handler] requires an `async fn`",
        ));
    }
    if sig.ident == "main" {
        return Err(syn::Error::new_spanned(
            &sig.ident,
            "the handler cannot be named `main`: #[faas::handler] generates `main`",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            "#[faas::handler] does not support generic handlers",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        return Err(syn::Error::new_spanned(
            variadic,
            "#[faas::handler] does not support variadic arguments",
        ));
    }

    let mut args = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => {
                return Err(syn::Error::new_spanned(
                    receiver,
                    "#[faas::handler] must be a free function, not a method with a `self` receiver",
                ));
            }
            FnArg::Typed(pat) => args.push((classify(&pat.ty)?, &pat.ty)),
        }
    }

    let shape = match args.as_slice() {
        [] => Shape::NoArgs,
        [(Arg::Request, _)] => Shape::Request,
        [(Arg::Request, _), (Arg::Context, _)] => Shape::RequestContext,
        [(Arg::Event, _), (Arg::Context, _)] => Shape::EventContext,
        [(Arg::Context, ty), ..] => {
            return Err(syn::Error::new_spanned(
                ty,
                "`faas::Context` must be the second argument: `async fn(faas::Request, faas::Context)` \
                 or `async fn(event: E, faas::Context)`",
            ));
        }
        [(Arg::Event, ty)] => {
            return Err(syn::Error::new_spanned(
                ty,
                "unsupported argument: a handler with one argument takes `faas::Request`; \
                 a typed event handler takes `(event: E, ctx: faas::Context)`",
            ));
        }
        [_, (_, ty)] => {
            return Err(syn::Error::new_spanned(
                ty,
                "the second argument of a handler must be `faas::Context`",
            ));
        }
        [_, _, (_, ty), ..] => {
            return Err(syn::Error::new_spanned(
                ty,
                "#[faas::handler] takes at most two arguments: `(faas::Request, faas::Context)` \
                 or `(event: E, faas::Context)`",
            ));
        }
    };

    if shape == Shape::EventContext && !returns_result(&sig.output) {
        let span = match &sig.output {
            ReturnType::Default => sig.paren_token.span.join(),
            ReturnType::Type(_, ty) => ty.span(),
        };
        return Err(syn::Error::new(
            span,
            "a typed event handler must return `Result<Out, E>` where `Out: Serialize` and \
             `E: Into<faas::Error>`",
        ));
    }

    let name = &sig.ident;
    // Point type errors (a return type that is not `IntoResponse`, an event that is not
    // `DeserializeOwned`) at the user's signature rather than at the macro.
    let span = match &sig.output {
        ReturnType::Default => sig.ident.span(),
        ReturnType::Type(_, ty) => ty.span(),
    };
    let service = match shape {
        Shape::NoArgs => quote_spanned! {span=>
            ::faas::handler_fn(|_: ::faas::Request| #name())
        },
        Shape::Request => quote_spanned! {span=> ::faas::handler_fn(#name) },
        Shape::RequestContext => quote_spanned! {span=> ::faas::context_fn(#name) },
        Shape::EventContext => quote_spanned! {span=> ::faas::event_fn(#name) },
    };
    // A typed event that is not `DeserializeOwned`, an output that is not `Serialize` or an error
    // that is not `Into<faas::Error>`: say so at the event type and at the return type first.
    let event_check = match (shape, args.first(), &sig.output) {
        (Shape::EventContext, Some((_, ty)), ReturnType::Type(_, output)) => {
            let input = quote_spanned! {ty.span()=>
                const _: fn() = ::faas::__private::assert_event::<#ty>;
            };
            let output = quote_spanned! {output.span()=>
                const _: fn() = ::faas::__private::assert_event_output::<#output>;
            };
            quote! { #input #output }
        }
        _ => quote! {},
    };
    let main = quote! {
        fn main() {
            ::faas::__private::start(#service)
        }
    };
    Ok(quote! {
        #func
        #event_check
        #main
    })
}

/// Classifies an argument type, rejecting the types no shape can take.
fn classify(ty: &Type) -> syn::Result<Arg> {
    match ty {
        Type::Path(path) if path.qself.is_none() => {
            let last = path
                .path
                .segments
                .last()
                .map(|segment| segment.ident.to_string());
            Ok(match last.as_deref() {
                Some("Request") => Arg::Request,
                Some("Context") => Arg::Context,
                _ => Arg::Event,
            })
        }
        Type::Paren(inner) => classify(&inner.elem),
        Type::Group(inner) => classify(&inner.elem),
        Type::Tuple(_) | Type::Array(_) => Ok(Arg::Event),
        Type::Reference(_) => Err(syn::Error::new_spanned(
            ty,
            "unsupported argument type: handler arguments must be owned (`faas::Request`, \
             `faas::Context` or an event type implementing `serde::de::DeserializeOwned`), not references",
        )),
        Type::ImplTrait(_) => Err(syn::Error::new_spanned(
            ty,
            "unsupported argument type: `impl Trait` arguments are not supported by #[faas::handler]",
        )),
        _ => Err(syn::Error::new_spanned(
            ty,
            "unsupported argument type: expected `faas::Request`, `faas::Context` or an owned event \
             type implementing `serde::de::DeserializeOwned`",
        )),
    }
}

/// Whether the return type is syntactically a `Result` (`Result<T, E>`, `faas::Result<T>`,
/// `anyhow::Result<T>`, ...).
fn returns_result(output: &ReturnType) -> bool {
    match output {
        ReturnType::Default => false,
        ReturnType::Type(_, ty) => match ty.as_ref() {
            Type::Path(path) => path
                .path
                .segments
                .last()
                .is_some_and(|segment| segment.ident == "Result"),
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(src: &str) -> syn::Result<String> {
        let func: ItemFn = syn::parse_str(src).expect("valid fn");
        expand(proc_macro2::TokenStream::new(), func).map(|tokens| tokens.to_string())
    }

    #[test]
    fn each_shape_picks_its_adapter() {
        let cases = [
            ("async fn f() -> &'static str { \"hi\" }", "handler_fn"),
            (
                "async fn f(req: faas::Request) -> String { String::new() }",
                "handler_fn (f)",
            ),
            (
                "async fn f(req: Request, ctx: faas::Context) -> String { String::new() }",
                "context_fn (f)",
            ),
            (
                "async fn f(ev: In, ctx: Context) -> Result<Out, faas::Error> { Ok(Out) }",
                "event_fn (f)",
            ),
        ];
        for (src, adapter) in cases {
            let out = expand_str(src).expect(src);
            assert!(out.contains(adapter), "{src} -> {out}");
            assert!(out.contains(":: faas :: __private :: start"), "{out}");
        }
    }

    #[test]
    fn misuse_is_rejected_with_a_message() {
        let cases = [
            (
                "fn f(req: Request) -> String { String::new() }",
                "requires an `async fn`",
            ),
            ("async fn main() {}", "cannot be named `main`"),
            ("async fn f<T>(req: Request) {}", "generic"),
            ("async fn f(req: &Request) {}", "not references"),
            (
                "async fn f(ctx: Context, req: Request) {}",
                "second argument",
            ),
            (
                "async fn f(ev: In) -> Result<Out, E> { Ok(Out) }",
                "a handler with one argument",
            ),
            ("async fn f(ev: In, x: u32) {}", "must be `faas::Context`"),
            (
                "async fn f(a: Request, b: Context, c: u8) {}",
                "at most two",
            ),
            (
                "async fn f(ev: In, ctx: Context) -> Out { Out }",
                "must return `Result",
            ),
        ];
        for (src, message) in cases {
            let err = expand_str(src).expect_err(src).to_string();
            assert!(err.contains(message), "{src}: {err}");
        }
    }
}
