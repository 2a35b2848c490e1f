//! `#[agent]`: an `Agent` implementation from an inherent impl block.

use std::collections::HashMap;

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::ext::IdentExt;
use syn::punctuated::Punctuated;
use syn::{Attribute, Expr, ExprLit, FnArg, Ident, ImplItem, ItemImpl, Lit, Token, Type};

use crate::tool::{self, Context, ToolFn, ToolOptions};
use crate::util::{self, Errors};

/// The options of `#[agent(...)]`.
#[derive(Default)]
struct AgentOptions {
    instructions: Option<Expr>,
    id: Option<Expr>,
    userdata: Option<Type>,
    llm: Option<Expr>,
    tools: Vec<Expr>,
}

impl AgentOptions {
    fn parse(args: TokenStream) -> syn::Result<Self> {
        let mut o = AgentOptions::default();
        let parser = syn::meta::parser(|meta| {
            let twice = || meta.error("this option is given twice");
            if meta.path.is_ident("instructions") {
                if o.instructions.is_some() {
                    return Err(twice());
                }
                o.instructions = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("id") {
                if o.id.is_some() {
                    return Err(twice());
                }
                o.id = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("userdata") {
                if o.userdata.is_some() {
                    return Err(twice());
                }
                o.userdata = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("llm") {
                if o.llm.is_some() {
                    return Err(twice());
                }
                o.llm = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("tools") {
                let content;
                let value = meta.value()?;
                syn::bracketed!(content in value);
                let list = Punctuated::<Expr, Token![,]>::parse_terminated(&content)?;
                o.tools.extend(list);
            } else {
                return Err(meta.error(
                    "unknown `#[agent]` option; expected `instructions = ...`, `id = ...`, \
                     `userdata = Type`, `llm = method` or `tools = [...]`",
                ));
            }
            Ok(())
        });
        syn::parse::Parser::parse2(parser, args)?;
        Ok(o)
    }
}

/// Where a string-valued option comes from.
enum Source {
    /// A method of the block, called with `&self`.
    Method(Ident),
    /// A literal or another expression, converted with `Into<String>`.
    Value(TokenStream),
}

fn source(expr: &Expr, methods: &Methods) -> Source {
    if let Expr::Path(p) = expr
        && p.qself.is_none()
        && let Some(ident) = p.path.get_ident()
        && methods.contains_key(&ident.unraw().to_string())
    {
        return Source::Method(ident.clone());
    }
    if let Expr::Lit(ExprLit {
        lit: Lit::Str(s), ..
    }) = expr
    {
        return Source::Value(quote!(::std::string::String::from(#s)));
    }
    Source::Value(quote!(::std::convert::Into::<::std::string::String>::into(#expr)))
}

fn source_tokens(source: &Source) -> TokenStream {
    match source {
        Source::Method(m) => {
            quote!(::std::convert::Into::<::std::string::String>::into(Self::#m(self)))
        }
        Source::Value(v) => v.clone(),
    }
}

/// The methods of the block, by name, with their `#[cfg]` attributes.
type Methods = HashMap<String, Vec<Attribute>>;

/// `#[tool]`, `#[switchboard::tool]`, `#[switchboard_macros::tool]`...
fn is_tool_attr(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == "tool")
}

pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let (options, options_ok) = match AgentOptions::parse(args) {
        Ok(o) => (o, true),
        Err(e) => {
            errors.push(e);
            (AgentOptions::default(), false)
        }
    };
    let mut imp: ItemImpl = match syn::parse2(item.clone()) {
        Ok(i) => i,
        Err(_) => {
            let err = syn::Error::new(
                Span::call_site(),
                "`#[agent]` goes on an impl block: `#[agent(instructions = \"...\")] impl MyAgent \
                 { ... }`",
            )
            .to_compile_error();
            return quote! { #err #item };
        }
    };
    if let Some((_, path, _)) = &imp.trait_ {
        errors.push(syn::Error::new_spanned(
            path,
            "`#[agent]` goes on an inherent impl block (`impl MyAgent { ... }`): it writes the \
             `Agent` implementation itself",
        ));
    }
    let self_ty = (*imp.self_ty).clone();
    let agent_name = util::type_name(&self_ty).unwrap_or_else(|| "Agent".to_owned());

    let mut methods = Methods::new();
    let mut tools: Vec<ToolFn> = Vec::new();
    let mut inferred_user: Option<Type> = None;
    for item in &mut imp.items {
        let ImplItem::Fn(f) = item else { continue };
        let cfgs = util::cfg_attrs(&f.attrs);
        methods.insert(f.sig.ident.unraw().to_string(), cfgs.clone());
        if inferred_user.is_none() {
            inferred_user = f.sig.inputs.iter().find_map(|input| match input {
                FnArg::Typed(pt) => util::context_user_type(&pt.ty, "RunContext")
                    .or_else(|| util::context_user_type(&pt.ty, "AgentContext")),
                FnArg::Receiver(_) => None,
            });
        }
        let mut tool_attrs = Vec::new();
        f.attrs.retain(|a| {
            if is_tool_attr(a) {
                tool_attrs.push(a.clone());
                false
            } else {
                true
            }
        });
        let Some(attr) = tool_attrs.first() else {
            continue;
        };
        for extra in &tool_attrs[1..] {
            errors.push(syn::Error::new_spanned(extra, "`#[tool]` is given twice"));
        }
        let tool_options = match ToolOptions::parse_attr(attr) {
            Ok(o) => o,
            Err(e) => {
                errors.push(e);
                ToolOptions::default()
            }
        };
        let mut local = Errors::default();
        let analysis = tool::analyze(
            &mut f.sig,
            &f.attrs,
            tool_options,
            &Context::Method(&self_ty),
            &mut local,
        );
        match local.take() {
            Some(e) => errors.push(e),
            None => tools.extend(analysis.map(|t| t.with_cfgs(cfgs))),
        }
    }
    for (i, t) in tools.iter().enumerate() {
        if tools[..i].iter().any(|other| other.name() == t.name()) {
            errors.push(syn::Error::new(
                t.ident().span(),
                format!(
                    "another `#[tool]` of this block is already named `{}`",
                    t.name()
                ),
            ));
        }
    }

    let user_ty: Type = options
        .userdata
        .clone()
        .or(inferred_user)
        .unwrap_or_else(|| syn::parse_quote!(()));
    let u = user_ty.to_token_stream();

    let instructions = match &options.instructions {
        Some(expr) => Some(source(expr, &methods)),
        None if methods.contains_key("instructions") => Some(Source::Method(Ident::new(
            "instructions",
            Span::call_site(),
        ))),
        None if !options_ok => None,
        None => {
            errors.push(syn::Error::new(
                Span::call_site(),
                "`#[agent]` needs instructions: `#[agent(instructions = \"...\")]`, \
                 `#[agent(instructions = method_name)]`, or an `fn instructions(&self) -> String` \
                 in the block",
            ));
            None
        }
    };
    let id = options.id.as_ref().map(|e| source(e, &methods));
    let llm = match &options.llm {
        Some(expr) => match source(expr, &methods) {
            Source::Method(m) => Some(m),
            Source::Value(_) => {
                errors.push(syn::Error::new_spanned(
                    expr,
                    "`llm` names a method of this block returning \
                     `Option<Arc<dyn switchboard::llm::Llm>>`",
                ));
                None
            }
        },
        None => None,
    };

    if !errors.is_empty() {
        let errors = errors.to_compile_errors();
        return quote! { #imp #errors };
    }

    let mut body = Vec::new();
    if let Some(id) = &id {
        let value = source_tokens(id);
        body.push(quote! {
            fn id(&self) -> ::std::string::String {
                #value
            }
        });
    }
    if let Some(instructions) = &instructions {
        let value = source_tokens(instructions);
        body.push(quote! {
            fn instructions(&self) -> ::std::string::String {
                #value
            }
        });
    }
    if !tools.is_empty() || !options.tools.is_empty() {
        let exprs: Vec<TokenStream> = tools
            .iter()
            .map(|t| t.method_expr(&u, &agent_name))
            .collect();
        let extra = &options.tools;
        let list = if tools.iter().all(|t| t.cfgs().is_empty()) {
            quote!(::std::vec![#(#exprs,)* #(#extra,)*])
        } else {
            // Tools of methods under `#[cfg]` are pushed under the same `#[cfg]`.
            let tools_ident = Ident::new("__switchboard_tools", Span::mixed_site());
            let pushes = tools.iter().zip(&exprs).map(|(t, e)| {
                let cfgs = t.cfgs();
                quote! { #(#cfgs)* #tools_ident.push(#e); }
            });
            quote! {{
                let mut #tools_ident = ::std::vec::Vec::new();
                #(#pushes)*
                #(#tools_ident.push(#extra);)*
                #tools_ident
            }}
        };
        body.push(quote! {
            fn tools(
                self: ::std::sync::Arc<Self>,
            ) -> ::std::vec::Vec<::switchboard::FunctionTool<#u>> {
                #list
            }
        });
    }
    if let Some(m) = &llm {
        body.push(quote! {
            fn llm(
                &self,
            ) -> ::std::option::Option<::std::sync::Arc<dyn ::switchboard::llm::Llm>> {
                Self::#m(self)
            }
        });
    }
    body.extend(hooks(&methods, &u));

    let (impl_generics, _, where_clause) = imp.generics.split_for_impl();
    quote! {
        #imp

        #[::switchboard::async_trait]
        impl #impl_generics ::switchboard::Agent<#u> for #self_ty #where_clause {
            #(#body)*
        }
    }
}

/// Delegations to the hooks the block defines.
fn hooks(methods: &Methods, u: &TokenStream) -> Vec<TokenStream> {
    let mut out = Vec::new();
    let has = |name: &str| methods.contains_key(name);
    if has("on_enter") {
        let cfgs = &methods["on_enter"];
        out.push(quote! {
            #(#cfgs)*
            async fn on_enter(
                &self,
                ctx: ::switchboard::AgentContext<#u>,
            ) -> ::switchboard::Result<()> {
                Self::on_enter(self, ctx).await
            }
        });
    }
    if has("on_exit") {
        let cfgs = &methods["on_exit"];
        out.push(quote! {
            #(#cfgs)*
            async fn on_exit(
                &self,
                ctx: ::switchboard::AgentContext<#u>,
            ) -> ::switchboard::Result<()> {
                Self::on_exit(self, ctx).await
            }
        });
    }
    if has("on_user_turn_completed") {
        let cfgs = &methods["on_user_turn_completed"];
        out.push(quote! {
            #(#cfgs)*
            async fn on_user_turn_completed(
                &self,
                ctx: ::switchboard::AgentContext<#u>,
                turn_ctx: &mut ::switchboard::chat::ChatContext,
                message: &mut ::switchboard::chat::ChatMessage,
            ) -> ::switchboard::Result<()> {
                Self::on_user_turn_completed(self, ctx, turn_ctx, message).await
            }
        });
    }
    if has("on_tools_executed") {
        let cfgs = &methods["on_tools_executed"];
        out.push(quote! {
            #(#cfgs)*
            fn on_tools_executed(&self, event: &mut ::switchboard::session::ToolsExecuted) {
                Self::on_tools_executed(self, event)
            }
        });
    }
    if has("chat_ctx") {
        let cfgs = &methods["chat_ctx"];
        out.push(quote! {
            #(#cfgs)*
            fn chat_ctx(&self) -> ::switchboard::chat::ChatContext {
                Self::chat_ctx(self)
            }
        });
    }
    if has("llm_node") {
        let cfgs = &methods["llm_node"];
        out.push(quote! {
            #(#cfgs)*
            fn llm_node(
                &self,
                llm: ::std::sync::Arc<dyn ::switchboard::llm::Llm>,
                request: ::switchboard::llm::ChatRequest,
            ) -> ::switchboard::llm::LlmStream {
                Self::llm_node(self, llm, request)
            }
        });
    }
    if has("transcription_node") {
        let cfgs = &methods["transcription_node"];
        out.push(quote! {
            #(#cfgs)*
            fn transcription_node(&self, text: ::std::string::String) -> ::std::string::String {
                Self::transcription_node(self, text)
            }
        });
    }
    out
}
