//! The rule contract as the engine sees it: the WIT, the host bindings
//! generated from it, and the facts the loader needs about it (which import
//! modules a rule may use, which exports it must have, which imports write a
//! return area into the rule's memory).

use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use wit_parser::abi::AbiVariant;
use wit_parser::{Resolve, SizeAlign, WorldId, WorldItem};

/// The public contract, as rule authors see it.
pub const RULE_WIT: &str = include_str!("../../../plugins/wit/rule.wit");
/// The engine's private additions for instance reset.
pub const ISOLATION_WIT: &str = include_str!("../../wit/isolation.wit");
/// The version of the contract this engine speaks.
pub const CONTRACT_VERSION: &str = "enforcer:rule@0.2.0";

/// The import the isolation pass adds: (module, name).
pub const MEMORY_GREW_IMPORT: (&str, &str) = ("enforcer:isolation/reset@0.1.0", "memory-grew");

/// Host bindings generated from the WIT. Every import may trap, so a host
/// function can fail an evaluation with a precise error.
pub mod bindings {
    #![allow(missing_docs)]
    wasmtime::component::bindgen!({
        path: ["../plugins/wit", "wit"],
        world: "enforcer:isolation/isolated-rule",
        imports: { default: trappable },
    });
}

/// Facts about the contract, derived once from the WIT.
pub struct ContractInfo {
    /// The parsed WIT: both packages.
    pub resolve: Resolve,
    /// The world the engine builds components for.
    pub isolated_world: WorldId,
    /// Core import modules a rule may use.
    pub allowed_import_modules: BTreeSet<String>,
    /// Functions a rule must export.
    pub exported_functions: Vec<String>,
    /// Imports whose results the engine writes to a return area in the
    /// rule's memory, with the area's size: (module, name) to bytes.
    pub return_areas: HashMap<(String, String), u32>,
}

impl ContractInfo {
    /// The contract, parsed on first use.
    pub fn get() -> &'static ContractInfo {
        static CONTRACT: OnceLock<ContractInfo> = OnceLock::new();
        CONTRACT.get_or_init(|| Self::parse().expect("the embedded WIT is valid"))
    }

    fn parse() -> anyhow::Result<ContractInfo> {
        let mut resolve = Resolve::default();
        let rule_package = resolve.push_str("rule.wit", RULE_WIT)?;
        let isolation_package = resolve.push_str("isolation.wit", ISOLATION_WIT)?;
        let public_world = resolve.select_world(&[rule_package], Some("rule"))?;
        let isolated_world = resolve.select_world(&[isolation_package], Some("isolated-rule"))?;

        let mut allowed_import_modules = BTreeSet::new();
        for (key, item) in &resolve.worlds[public_world].imports {
            if let WorldItem::Interface { .. } = item {
                allowed_import_modules.insert(resolve.name_world_key(key));
            }
        }

        let exported_functions = resolve.worlds[public_world]
            .exports
            .values()
            .filter_map(|item| match item {
                WorldItem::Function(f) => Some(f.name.clone()),
                _ => None,
            })
            .collect();

        let mut sizes = SizeAlign::default();
        sizes.fill(&resolve);
        let mut return_areas = HashMap::new();
        for (key, item) in &resolve.worlds[isolated_world].imports {
            let WorldItem::Interface { id, .. } = item else {
                continue;
            };
            let module = resolve.name_world_key(key);
            for func in resolve.interfaces[*id].functions.values() {
                let signature = resolve.wasm_signature(AbiVariant::GuestImport, func);
                if let (true, Some(result)) = (signature.retptr, &func.result) {
                    let bytes = sizes.size(result).size_wasm32() as u32;
                    return_areas.insert((module.clone(), func.name.clone()), bytes);
                }
            }
        }

        Ok(ContractInfo {
            resolve,
            isolated_world,
            allowed_import_modules,
            exported_functions,
            return_areas,
        })
    }

    /// The allowed import modules, for error messages.
    pub fn describe_allowed_imports(&self) -> String {
        self.allowed_import_modules
            .iter()
            .map(|m| format!("`{m}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_lists_host_interface_and_exports() {
        let contract = ContractInfo::get();
        for module in ["enforcer:rule/event@0.2.0", "enforcer:rule/host@0.2.0"] {
            assert!(contract.allowed_import_modules.contains(module), "{module}");
        }
        assert!(
            !contract
                .allowed_import_modules
                .iter()
                .any(|m| m.starts_with("enforcer:isolation"))
        );
        let mut exports = contract.exported_functions.clone();
        exports.sort();
        assert_eq!(exports, ["evaluate", "manifest"]);
    }

    #[test]
    fn return_areas_cover_imports_returning_strings_and_lists() {
        let areas = &ContractInfo::get().return_areas;
        let event = "enforcer:rule/event@0.2.0".to_string();
        let host = "enforcer:rule/host@0.2.0".to_string();
        // A string is a pointer and a length.
        assert_eq!(areas.get(&(event.clone(), "id".into())), Some(&8));
        // option<string>: a discriminant, then the string.
        assert_eq!(areas.get(&(event.clone(), "text".into())), Some(&12));
        // option<s64>: a discriminant, padding, then the integer.
        assert_eq!(areas.get(&(event, "int".into())), Some(&16));
        // Scalars come back in registers and need no area.
        assert_eq!(areas.get(&(host.clone(), "counter".into())), None);
        assert_eq!(areas.get(&(host, "has-label".into())), None);
    }
}
