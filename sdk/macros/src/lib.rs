//! The `#[weir_sdk::plugin]` attribute; see the `weir-sdk` crate for its documentation.

use proc_macro::TokenStream;
use quote::quote;
use syn::spanned::Spanned;
use syn::{parse_macro_input, ItemImpl};

/// Exports a [`Plugin`] implementation as the plugin of this wasm component.
///
/// # Requirements
/// - Put it on the `impl weir_sdk::Plugin for YourType` block, once per crate.
/// - The crate is a `cdylib` (`[lib] crate-type = ["cdylib", "rlib"]` keeps native tests working).
///
/// # Example
/// ```text
/// #[weir_sdk::plugin]
/// impl Plugin for MyFilter { /* init, fields, process */ }
/// ```
///
/// # Generated code
/// The impl block unchanged, plus (on wasm targets only) a hidden type implementing the
/// `weir:filter/filter` WIT exports by delegating to `weir_sdk`'s batch runtime for
/// `YourType`, and the `export!` call that wires it into the component.
///
/// [`Plugin`]: https://docs.rs/weir-sdk/latest/weir_sdk/trait.Plugin.html
#[proc_macro_attribute]
pub fn plugin(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        let attr = proc_macro2::TokenStream::from(attr);
        return syn::Error::new(attr.span(), "#[weir_sdk::plugin] takes no arguments")
            .to_compile_error()
            .into();
    }
    let block = parse_macro_input!(item as ItemImpl);
    let names_plugin = block
        .trait_
        .as_ref()
        .and_then(|(_, path, _)| path.segments.last())
        .is_some_and(|seg| seg.ident == "Plugin");
    if !names_plugin {
        return syn::Error::new(
            block.self_ty.span(),
            "#[weir_sdk::plugin] goes on an `impl weir_sdk::Plugin for YourType` block",
        )
        .to_compile_error()
        .into();
    }
    if !block.generics.params.is_empty() {
        return syn::Error::new(
            block.generics.span(),
            "a Weir plugin type cannot be generic",
        )
        .to_compile_error()
        .into();
    }
    let ty = &block.self_ty;
    quote! {
        #block

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __WeirExport;
            impl ::weir_sdk::__private::Guest for __WeirExport {
                fn init(config: ::std::string::String)
                    -> ::std::result::Result<::weir_sdk::__private::Manifest, ::std::string::String> {
                    ::weir_sdk::__private::export_init::<#ty>(config)
                }
                fn process(batch: ::std::vec::Vec<u8>)
                    -> ::std::result::Result<::std::vec::Vec<u8>, ::std::string::String> {
                    ::weir_sdk::__private::export_process::<#ty>(batch)
                }
            }
            ::weir_sdk::__private::bindings::__export_weir_plugin!(__WeirExport with_types_in ::weir_sdk::__private::bindings);
        };
    }
    .into()
}
