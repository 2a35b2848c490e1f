//! `#[tool]`: the analysis of a tool function's signature, and the code that builds its
//! `FunctionTool` (shared with `#[agent]`, whose `#[tool]` methods go through the same steps).

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{
    Attribute, Expr, ExprLit, FnArg, Ident, ItemFn, Lit, LitStr, Meta, Pat, Signature, Type,
};

use crate::util::{self, Errors};

/// The options of `#[tool(...)]`.
#[derive(Default)]
pub struct ToolOptions {
    /// `name = "..."`: the tool's name instead of the function's.
    pub name: Option<LitStr>,
    /// `description = ...`: the description instead of the doc comment.
    pub description: Option<Expr>,
    /// `ignore_on_enter`: hidden from replies generated inside `on_enter`.
    pub ignore_on_enter: bool,
}

impl ToolOptions {
    fn parse_one(&mut self, meta: syn::meta::ParseNestedMeta<'_>) -> syn::Result<()> {
        if meta.path.is_ident("name") {
            if self.name.is_some() {
                return Err(meta.error("`name` is given twice"));
            }
            self.name = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("description") {
            if self.description.is_some() {
                return Err(meta.error("`description` is given twice"));
            }
            self.description = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("ignore_on_enter") {
            self.ignore_on_enter = true;
        } else {
            return Err(meta.error(
                "unknown `#[tool]` option; expected `name = \"...\"`, `description = \"...\"` \
                 or `ignore_on_enter`",
            ));
        }
        Ok(())
    }

    /// Parses the arguments of `#[tool(...)]` given to the attribute macro.
    pub fn parse_args(args: TokenStream) -> syn::Result<Self> {
        let mut options = ToolOptions::default();
        let parser = syn::meta::parser(|meta| options.parse_one(meta));
        syn::parse::Parser::parse2(parser, args)?;
        Ok(options)
    }

    /// Parses a `#[tool]` / `#[tool(...)]` attribute found on a method.
    pub fn parse_attr(attr: &Attribute) -> syn::Result<Self> {
        let mut options = ToolOptions::default();
        match &attr.meta {
            Meta::Path(_) => {}
            Meta::List(_) => attr.parse_nested_meta(|meta| options.parse_one(meta))?,
            Meta::NameValue(nv) => {
                return Err(syn::Error::new_spanned(
                    nv,
                    "expected `#[tool]` or `#[tool(name = \"...\", ...)]`",
                ));
            }
        }
        Ok(options)
    }
}

/// How a tool method receives its agent.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Receiver {
    /// A free function, or an associated function without `self`.
    None,
    /// `&self`.
    Ref,
    /// `self: Arc<Self>`.
    Arc,
}

/// One argument the model fills in: a field of the arguments struct.
pub struct Field {
    pub ident: Ident,
    pub ty: Type,
    pub attrs: Vec<Attribute>,
}

/// One argument of the call to the user's function.
enum CallArg {
    /// The `RunContext` given by the session.
    Ctx,
    /// The field with this index.
    Field(usize),
}

/// A tool function, analysed.
pub struct ToolFn {
    ident: Ident,
    /// Where errors about the return type point.
    output_span: Span,
    name: String,
    description: TokenStream,
    ignore_on_enter: bool,
    fields: Vec<Field>,
    call: Vec<CallArg>,
    receiver: Receiver,
    /// `T` of the `RunContext<T>` parameter, when there is one.
    pub ctx_user: Option<Type>,
    /// The function's `#[cfg]` attributes, repeated on what is generated from it.
    cfgs: Vec<Attribute>,
}

/// Where a tool function was found.
pub enum Context<'a> {
    /// A free function under `#[tool]`.
    Free,
    /// A method of an `#[agent]` impl block whose self type is this.
    Method(&'a Type),
}

const NON_IDENT_PATTERN: &str = "tool parameters must be plain names like `day: String`: \
                                 the name is what the model sees";

/// Checks a tool function's signature and removes, in place, the parameter attributes the
/// compiler would reject (doc comments, `#[schemars]`, `#[serde]`...); they move to the fields of
/// the arguments struct. Errors go to `errors`; the analysis is `None` when there were any.
pub fn analyze(
    sig: &mut Signature,
    fn_attrs: &[Attribute],
    options: ToolOptions,
    context: &Context<'_>,
    errors: &mut Errors,
) -> Option<ToolFn> {
    let before = errors.is_empty();
    let mut errors_here = Errors::default();
    let e = &mut errors_here;

    if sig.asyncness.is_none() {
        e.push(syn::Error::new(
            sig.fn_token.span,
            "`#[tool]` functions must be `async`: write `async fn`",
        ));
    }
    if let Some(c) = &sig.constness {
        e.push(syn::Error::new(
            c.span,
            "`#[tool]` functions cannot be `const`",
        ));
    }
    if let Some(u) = &sig.unsafety {
        e.push(syn::Error::new(
            u.span,
            "`#[tool]` functions cannot be `unsafe`",
        ));
    }
    if let Some(abi) = &sig.abi {
        e.push(syn::Error::new_spanned(
            abi,
            "`#[tool]` functions cannot have an `extern` ABI",
        ));
    }
    if let Some(v) = &sig.variadic {
        e.push(syn::Error::new_spanned(
            v,
            "`#[tool]` functions cannot be variadic",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        let message = "`#[tool]` functions cannot be generic: the model's arguments are \
                       described from concrete parameter types";
        if sig.generics.params.is_empty() {
            e.push(syn::Error::new_spanned(&sig.generics.where_clause, message));
        } else {
            e.push(syn::Error::new_spanned(&sig.generics, message));
        }
    }

    let mut receiver = Receiver::None;
    let mut fields = Vec::new();
    let mut call = Vec::new();
    let mut ctx_user: Option<Type> = None;
    let mut ctx_span: Option<Span> = None;

    for input in sig.inputs.iter_mut() {
        match input {
            FnArg::Receiver(r) => {
                let Context::Method(_) = context else {
                    e.push(syn::Error::new_spanned(
                        &*r,
                        "a free `#[tool]` function cannot take `self`: for tool methods, put \
                         `#[agent]` on the impl block (its `#[tool]` methods take `&self`)",
                    ));
                    continue;
                };
                r.attrs.retain(util::stays_on_param);
                receiver = if r.colon_token.is_none() {
                    match (&r.reference, &r.mutability) {
                        (Some(_), None) => Receiver::Ref,
                        (Some(_), Some(_)) => {
                            e.push(syn::Error::new_spanned(
                                &*r,
                                "tool methods take `&self`, not `&mut self` (tools may run \
                                 concurrently; keep mutable state in the session's userdata \
                                 or behind a lock)",
                            ));
                            continue;
                        }
                        (None, _) => {
                            e.push(syn::Error::new_spanned(
                                &*r,
                                "tool methods take `&self` (or `self: Arc<Self>`), not `self`",
                            ));
                            continue;
                        }
                    }
                } else if matches!(&*r.ty, Type::Reference(t) if t.mutability.is_none()) {
                    Receiver::Ref
                } else if util::type_name(&r.ty).as_deref() == Some("Arc") {
                    Receiver::Arc
                } else {
                    e.push(syn::Error::new_spanned(
                        &*r,
                        "tool methods take `&self` or `self: Arc<Self>`",
                    ));
                    continue;
                };
            }
            FnArg::Typed(pt) => {
                let attrs = std::mem::take(&mut pt.attrs);
                let mut moved = Vec::new();
                for attr in attrs {
                    if util::stays_on_param(&attr) {
                        pt.attrs.push(attr);
                    } else if util::is_cfg(&attr) {
                        e.push(syn::Error::new_spanned(
                            &attr,
                            "`#[cfg]` is not supported on tool parameters",
                        ));
                    } else {
                        moved.push(attr);
                    }
                }
                if let Some(user) = util::context_user_type(&pt.ty, "RunContext") {
                    if let Some(first) = ctx_span {
                        let mut err = syn::Error::new_spanned(
                            &pt.ty,
                            "a tool takes at most one `RunContext` parameter",
                        );
                        err.combine(syn::Error::new(first, "the first one is here"));
                        e.push(err);
                        continue;
                    }
                    ctx_span = Some(pt.ty.span());
                    ctx_user = Some(user);
                    call.push(CallArg::Ctx);
                    continue;
                }
                if util::context_user_type(&pt.ty, "AgentContext").is_some() {
                    e.push(syn::Error::new_spanned(
                        &pt.ty,
                        "tools receive a `RunContext<U>` (which derefs to `AgentContext<U>`), \
                         not an `AgentContext`",
                    ));
                    continue;
                }
                let ident = match &*pt.pat {
                    Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.ident.clone(),
                    other => {
                        e.push(syn::Error::new_spanned(other, NON_IDENT_PATTERN));
                        continue;
                    }
                };
                match &*pt.ty {
                    Type::Reference(r) => {
                        e.push(syn::Error::new_spanned(
                            r,
                            "tool parameters must own their data (they are deserialised from \
                             the model's JSON): use `String` instead of `&str`, `Vec<T>` \
                             instead of `&[T]`",
                        ));
                        continue;
                    }
                    Type::ImplTrait(t) => {
                        e.push(syn::Error::new_spanned(
                            t,
                            "`impl Trait` tool parameters are not supported: use a concrete type",
                        ));
                        continue;
                    }
                    _ => {}
                }
                let mut ty = (*pt.ty).clone();
                if let Context::Method(self_ty) = context {
                    util::replace_self(&mut ty, self_ty);
                }
                call.push(CallArg::Field(fields.len()));
                fields.push(Field {
                    ident,
                    ty,
                    attrs: moved,
                });
            }
        }
    }

    let name = match &options.name {
        Some(lit) => {
            let name = lit.value();
            if !util::valid_tool_name(&name) {
                e.push(syn::Error::new(
                    lit.span(),
                    "tool names have 1 to 64 ASCII letters, digits, `_` or `-`",
                ));
            }
            name
        }
        None => {
            let name = sig.ident.unraw().to_string();
            if !util::valid_tool_name(&name) {
                e.push(syn::Error::new(
                    sig.ident.span(),
                    "this function's name is not a valid tool name (1 to 64 ASCII letters, \
                     digits, `_` or `-`): give one with `#[tool(name = \"...\")]`",
                ));
            }
            name
        }
    };
    let description = match options.description {
        Some(Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        })) => {
            let text = s.value();
            let text = text.trim();
            quote_spanned!(s.span()=> #text)
        }
        Some(other) => quote!(#other),
        None => util::doc_text(fn_attrs).unwrap_or_else(|| quote!("")),
    };

    let failed = !errors_here.is_empty();
    if let Some(err) = errors_here.take() {
        errors.push(err);
    }
    if failed || !before {
        return None;
    }
    let output_span = match &sig.output {
        syn::ReturnType::Type(_, ty) => ty.span(),
        syn::ReturnType::Default => sig.ident.span(),
    };
    Some(ToolFn {
        ident: sig.ident.clone(),
        output_span,
        name,
        description,
        ignore_on_enter: options.ignore_on_enter,
        fields,
        call,
        receiver,
        ctx_user,
        cfgs: util::cfg_attrs(fn_attrs),
    })
}

impl ToolFn {
    /// The same tool under these `#[cfg]` attributes.
    pub fn with_cfgs(mut self, cfgs: Vec<Attribute>) -> Self {
        self.cfgs = cfgs;
        self
    }

    /// The tool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The function's name, for error spans.
    pub fn ident(&self) -> &Ident {
        &self.ident
    }

    /// The `#[cfg]` attributes of the function.
    pub fn cfgs(&self) -> &[Attribute] {
        &self.cfgs
    }

    fn args_ident(&self, prefix: &str) -> Ident {
        format_ident!(
            "__{}{}Args",
            prefix,
            util::camel_case(&self.ident.unraw().to_string())
        )
    }

    /// The hidden arguments struct.
    fn args_struct(&self, args_ident: &Ident) -> TokenStream {
        let fields = self.fields.iter().map(|f| {
            let Field { ident, ty, attrs } = f;
            quote! { #(#attrs)* #ident: #ty, }
        });
        quote! {
            #[derive(
                ::switchboard::__private::serde::Deserialize,
                ::switchboard::__private::schemars::JsonSchema
            )]
            #[serde(crate = "::switchboard::__private::serde")]
            #[schemars(crate = "::switchboard::__private::schemars")]
            #[allow(non_camel_case_types)]
            struct #args_ident { #(#fields)* }
        }
    }

    /// `(ctx pattern, destructuring statement, call arguments)` for the closure.
    fn closure_parts(&self, args_ident: &Ident) -> (TokenStream, TokenStream, Vec<TokenStream>) {
        let ctx = Ident::new("__switchboard_ctx", Span::mixed_site());
        let args = Ident::new("__switchboard_args", Span::mixed_site());
        let idents: Vec<&Ident> = self.fields.iter().map(|f| &f.ident).collect();
        let ctx_pat = if self.ctx_user.is_some() {
            quote!(#ctx)
        } else {
            quote!(_)
        };
        let destructure = quote! { let #args_ident { #(#idents),* } = #args; };
        let call_args = self
            .call
            .iter()
            .map(|a| match a {
                CallArg::Ctx => quote!(#ctx),
                CallArg::Field(i) => {
                    let ident = &self.fields[*i].ident;
                    quote!(#ident)
                }
            })
            .collect();
        (ctx_pat, destructure, call_args)
    }

    fn new_tool(&self, user_ty: &TokenStream, closure: TokenStream) -> TokenStream {
        let name = &self.name;
        let description = &self.description;
        let flags = self
            .ignore_on_enter
            .then(|| quote!(.with_flags(::switchboard::tools::ToolFlags::IGNORE_ON_ENTER)));
        quote_spanned! {self.output_span=>
            ::switchboard::FunctionTool::<#user_ty>::new(#name, #description, #closure) #flags
        }
    }

    /// The `FunctionTool` expression for a free function (the body of `<fn>_tool`).
    fn free_body(&self, user_ty: &TokenStream) -> TokenStream {
        let args_ident = self.args_ident("");
        let args_struct = self.args_struct(&args_ident);
        let (ctx_pat, destructure, call_args) = self.closure_parts(&args_ident);
        let args = Ident::new("__switchboard_args", Span::mixed_site());
        let f = &self.ident;
        let closure = quote! {
            |#ctx_pat: ::switchboard::RunContext<#user_ty>, #args: #args_ident| {
                #destructure
                #f(#(#call_args),*)
            }
        };
        let tool = self.new_tool(user_ty, closure);
        quote! {
            #args_struct
            #tool
        }
    }

    /// The `FunctionTool` expression for a method of an `#[agent]` block, inside
    /// `fn tools(self: Arc<Self>)`.
    pub fn method_expr(&self, user_ty: &TokenStream, agent_name: &str) -> TokenStream {
        let args_ident = self.args_ident(&util::camel_case(agent_name));
        let args_struct = self.args_struct(&args_ident);
        let (ctx_pat, destructure, call_args) = self.closure_parts(&args_ident);
        let args = Ident::new("__switchboard_args", Span::mixed_site());
        let this = Ident::new("__switchboard_this", Span::mixed_site());
        let m = &self.ident;
        let (capture, closure) = match self.receiver {
            Receiver::None => (
                quote!(),
                quote! {
                    |#ctx_pat: ::switchboard::RunContext<#user_ty>, #args: #args_ident| {
                        #destructure
                        Self::#m(#(#call_args),*)
                    }
                },
            ),
            Receiver::Ref | Receiver::Arc => {
                let receiver = if self.receiver == Receiver::Ref {
                    quote!(&*#this)
                } else {
                    quote!(#this)
                };
                (
                    quote! { let #this = ::std::sync::Arc::clone(&self); },
                    quote! {
                        move |#ctx_pat: ::switchboard::RunContext<#user_ty>, #args: #args_ident| {
                            let #this = ::std::sync::Arc::clone(&#this);
                            async move {
                                #destructure
                                Self::#m(#receiver, #(#call_args),*).await
                            }
                        }
                    },
                )
            }
        };
        let tool = self.new_tool(user_ty, closure);
        quote! {{
            #args_struct
            #capture
            #tool
        }}
    }
}

/// `#[tool]` on a free function.
pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let options = match ToolOptions::parse_args(args) {
        Ok(o) => o,
        Err(e) => {
            errors.push(e);
            ToolOptions::default()
        }
    };
    let mut item: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            let err = syn::Error::new(
                Span::call_site(),
                "`#[tool]` goes on an `async fn` (or on methods of an impl block under `#[agent]`)",
            );
            let err = err.to_compile_error();
            return quote! { #err #item };
        }
    };
    let analysis = analyze(
        &mut item.sig,
        &item.attrs,
        options,
        &Context::Free,
        &mut errors,
    );
    let Some(tool) = analysis.filter(|_| errors.is_empty()) else {
        let errors = errors.to_compile_errors();
        return quote! { #item #errors };
    };

    let vis = &item.vis;
    let builder = format_ident!(
        "{}_tool",
        item.sig.ident.unraw(),
        span = item.sig.ident.span()
    );
    let (generics, user_ty) = match &tool.ctx_user {
        Some(ty) => (quote!(), quote!(#ty)),
        None => {
            // `U` unless the signature already names something `U`.
            let sig = &item.sig;
            let name = if util::mentions_ident(quote!(#sig), "U") {
                "__U"
            } else {
                "U"
            };
            let u = Ident::new(name, Span::call_site());
            (quote!(<#u: ::std::marker::Send + 'static>), quote!(#u))
        }
    };
    let doc = format!(
        " The `{}` tool, which calls `{}` (generated by `#[tool]`).",
        tool.name,
        item.sig.ident.unraw()
    );
    let body = tool.free_body(&user_ty);
    let cfgs = tool.cfgs();
    quote! {
        #item

        #(#cfgs)*
        #[doc = #doc]
        #vis fn #builder #generics() -> ::switchboard::FunctionTool<#user_ty> {
            #body
        }
    }
}
