//! Helpers shared by `#[tool]` and `#[agent]`.

use proc_macro2::{TokenStream, TokenTree};
use quote::quote;
use syn::visit_mut::VisitMut;
use syn::{Attribute, Expr, ExprLit, GenericArgument, Lit, Meta, PathArguments, Type, parse_quote};

/// The text of doc comments, as the expression of a `&'static str`: one leading space removed
/// from each line, lines joined with `\n`, the whole trimmed (as schemars does for field
/// descriptions). `None` without doc comments.
pub fn doc_text(attrs: &[Attribute]) -> Option<TokenStream> {
    let mut literal = Vec::new();
    let mut pieces = Vec::new();
    let mut all_literal = true;
    for attr in attrs.iter().filter(|a| a.path().is_ident("doc")) {
        let Meta::NameValue(nv) = &attr.meta else {
            continue;
        };
        match &nv.value {
            Expr::Lit(ExprLit {
                lit: Lit::Str(s), ..
            }) => {
                let text = s.value();
                let line = text.strip_prefix(' ').unwrap_or(&text).to_owned();
                pieces.push(quote!(#line));
                literal.push(line);
            }
            other => {
                all_literal = false;
                pieces.push(quote!(#other));
            }
        }
    }
    if pieces.is_empty() {
        return None;
    }
    if all_literal {
        let text = literal.join("\n");
        let text = text.trim();
        return Some(quote!(#text));
    }
    let mut joined = TokenStream::new();
    for (i, piece) in pieces.into_iter().enumerate() {
        if i > 0 {
            joined.extend(quote!("\n",));
        }
        joined.extend(quote!(#piece,));
    }
    Some(quote!(::std::primitive::str::trim(::std::concat!(#joined))))
}

/// The last path segment's name of a type written as a path (`a::b::RunContext<X>` →
/// `RunContext`).
pub fn type_name(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last().map(|s| s.ident.to_string()),
        Type::Group(g) => type_name(&g.elem),
        Type::Paren(p) => type_name(&p.elem),
        _ => None,
    }
}

/// For a `RunContext<T>` / `AgentContext<T>` type (named `name`): `Some(T)`, or `Some(())` when
/// written without a type argument. `None` for any other type.
pub fn context_user_type(ty: &Type, name: &str) -> Option<Type> {
    let path = match ty {
        Type::Path(p) if p.qself.is_none() => &p.path,
        Type::Group(g) => return context_user_type(&g.elem, name),
        Type::Paren(p) => return context_user_type(&p.elem, name),
        _ => return None,
    };
    let last = path.segments.last()?;
    if last.ident != name {
        return None;
    }
    if let PathArguments::AngleBracketed(args) = &last.arguments {
        for arg in &args.args {
            if let GenericArgument::Type(t) = arg {
                return Some(t.clone());
            }
        }
    }
    Some(parse_quote!(()))
}

/// `get_hours` → `GetHours`.
pub fn camel_case(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    for part in snake.split('_').filter(|p| !p.is_empty()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    out
}

/// True when `tokens` contain the identifier `name` anywhere.
pub fn mentions_ident(tokens: TokenStream, name: &str) -> bool {
    tokens.into_iter().any(|t| match t {
        TokenTree::Ident(i) => i == name,
        TokenTree::Group(g) => mentions_ident(g.stream(), name),
        _ => false,
    })
}

/// Attributes that stay on a function parameter (the compiler accepts them there); all others
/// are moved to the arguments struct's field.
pub fn stays_on_param(attr: &Attribute) -> bool {
    ["allow", "warn", "deny", "forbid", "expect"]
        .iter()
        .any(|name| attr.path().is_ident(name))
}

/// True for `cfg` / `cfg_attr`, which tool parameters do not support.
pub fn is_cfg(attr: &Attribute) -> bool {
    attr.path().is_ident("cfg") || attr.path().is_ident("cfg_attr")
}

/// The `#[cfg(...)]` attributes among `attrs`.
pub fn cfg_attrs(attrs: &[Attribute]) -> Vec<Attribute> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("cfg"))
        .cloned()
        .collect()
}

/// Replaces `Self` in a type by the impl's self type (items nested in a method body, like the
/// arguments struct, cannot name `Self`).
pub fn replace_self(ty: &mut Type, self_ty: &Type) {
    struct Replace<'a>(&'a Type);
    impl VisitMut for Replace<'_> {
        fn visit_type_mut(&mut self, ty: &mut Type) {
            if let Type::Path(p) = ty
                && p.qself.is_none()
                && p.path.is_ident("Self")
            {
                *ty = self.0.clone();
                return;
            }
            syn::visit_mut::visit_type_mut(self, ty);
        }
    }
    Replace(self_ty).visit_type_mut(ty);
}

/// Valid tool names: 1 to 64 ASCII letters, digits, `_` or `-` (what providers accept).
pub fn valid_tool_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Collects errors and combines them into one.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(e) => e.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub fn take(&mut self) -> Option<syn::Error> {
        self.0.take()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub fn to_compile_errors(&self) -> TokenStream {
        self.0
            .as_ref()
            .map(syn::Error::to_compile_error)
            .unwrap_or_default()
    }
}
