//! The isolation pass: rewrites a rule's core module so that a warm instance
//! can be reused for call after call while each call starts from exactly the
//! same memory and globals, as if the instance were fresh.
//!
//! Re-instantiating per call would give the same guarantee at several
//! microseconds a call; this pass gives it for the cost of restoring only
//! what the last call touched. It works in three parts:
//!
//! * **Dirty tracking.** Every store, `memory.fill` and `memory.copy` in the
//!   rule's code is preceded by a check that marks the 1 KiB block it writes
//!   as dirty, in a second linear memory the rule's code cannot address.
//!   Writes the engine makes into the rule's memory (arguments copied in
//!   through `cabi_realloc`, results written to an import's return area) are
//!   marked by wrappers around those entry points.
//! * **Snapshot.** After the first call on an instance (the engine always
//!   makes it `manifest`), the injected post-return code copies memory 0 and
//!   every mutable global into the second memory and new globals.
//! * **Reset.** After every later call, the post-return code copies each
//!   dirty block back from the snapshot and restores the globals. A call
//!   that grew memory cannot be undone that way (memory does not shrink),
//!   so the reset raises a flag instead; the next call on the instance
//!   starts by calling the private `memory-grew` import, which the engine
//!   answers by retiring the instance and rerunning the call on a fresh one.
//!   (Post-return code may not call imports, hence the detour.)
//!
//! The pass refuses what it cannot make safe: imports outside the contract,
//! more than one memory, table mutation and passive data segments (both
//! would be state the reset does not cover), and shared-memory atomics.

use std::collections::HashMap;

use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::{
    BlockType, CodeSection, ConstExpr, EntityType, ExportKind, ExportSection, Function,
    FunctionSection, GlobalSection, GlobalType, ImportSection, Instruction, MemArg, MemorySection,
    MemoryType, Module, TypeSection, ValType,
};
use wasmparser::{ExternalKind, Operator, Parser, Payload, TypeRef, Validator, WasmFeatures};

use super::contract::{CONTRACT_VERSION, ContractInfo, MEMORY_GREW_IMPORT};

/// Log2 of the dirty-tracking block size. 1 KiB blocks keep the copy small
/// for a typical rule call, which touches a few scattered kilobytes.
const BLOCK_SHIFT: u32 = 10;
const BLOCK_BYTES: u32 = 1 << BLOCK_SHIFT;
/// Bytes copied past the end of a dirty block. A store is marked by the
/// block of its first byte; the widest store (`v128`) is 16 bytes, so a
/// store that straddles into the next block is covered by this slack.
const STRADDLE_SLACK: u32 = 16;
const WASM_PAGE: u64 = 65536;

/// Why a module cannot be isolated.
#[derive(Debug, thiserror::Error)]
pub enum IsolationError {
    /// Not a valid core wasm module, or it uses a feature the engine disables.
    #[error("not a valid WebAssembly module: {0}")]
    Invalid(String),
    /// An import outside the contract.
    #[error(
        "imports `{module}::{name}`, which the contract does not offer (a rule may import only {allowed})"
    )]
    ForbiddenImport {
        /// The import's module name.
        module: String,
        /// The import's field name.
        name: String,
        /// The modules a rule may import from.
        allowed: String,
    },
    /// Built against another version of the contract.
    #[error(
        "was built against contract {found} (it imports `{module}`); this engine speaks {expected}: rebuild the rule with the SDK of {expected}"
    )]
    WrongContract {
        /// The contract the rule's imports name.
        found: String,
        /// The import that names it.
        module: String,
        /// The contract this engine speaks.
        expected: &'static str,
    },
    /// Something the reset cannot cover.
    #[error("{0}")]
    Unsupported(String),
    /// A required export is missing.
    #[error("does not export `{0}`, which the contract requires")]
    MissingExport(String),
}

/// The contract an import names, when it is the rule contract at another
/// version (`enforcer:rule/host@0.1.0` names `enforcer:rule@0.1.0`).
fn other_contract(module: &str) -> Option<String> {
    let (package, _) = CONTRACT_VERSION.split_once('@')?;
    let (interface, version) = module.split_once('@')?;
    let found = format!("{package}@{version}");
    (interface.starts_with(&format!("{package}/")) && found != CONTRACT_VERSION).then_some(found)
}

/// What the pass learned about the input module.
struct ModuleShape {
    types: Vec<wasmparser::FuncType>,
    /// Type index of each imported function, in order.
    import_types: Vec<u32>,
    /// The (module, name) of each imported function, in order.
    import_names: Vec<(String, String)>,
    /// Type index of each defined function, in order.
    function_types: Vec<u32>,
    globals: Vec<wasmparser::GlobalType>,
    exports: Vec<(String, ExternalKind, u32)>,
}

impl ModuleShape {
    /// The type index of a function, imported or defined.
    fn type_index(&self, func: u32) -> u32 {
        let n_imports = self.import_types.len() as u32;
        if func < n_imports {
            self.import_types[func as usize]
        } else {
            self.function_types[(func - n_imports) as usize]
        }
    }

    fn func_type(&self, func: u32) -> &wasmparser::FuncType {
        &self.types[self.type_index(func) as usize]
    }

    fn exported_func(&self, name: &str) -> Option<u32> {
        self.exports
            .iter()
            .find(|(n, k, _)| n == name && *k == ExternalKind::Func)
            .map(|(_, _, i)| *i)
    }
}

/// The wasm features a rule may use. Threads and shared memory would let
/// state escape the reset; multi-memory in the input would put memory
/// beyond the dirty tracking (the pass adds its own second memory after
/// validation); memory64, GC and exceptions are simply not needed.
fn rule_features() -> WasmFeatures {
    let mut features = WasmFeatures::default();
    for off in [
        WasmFeatures::THREADS,
        WasmFeatures::SHARED_EVERYTHING_THREADS,
        WasmFeatures::MULTI_MEMORY,
        WasmFeatures::MEMORY64,
        WasmFeatures::GC,
        WasmFeatures::EXCEPTIONS,
        WasmFeatures::LEGACY_EXCEPTIONS,
        WasmFeatures::STACK_SWITCHING,
        WasmFeatures::COMPONENT_MODEL,
        WasmFeatures::CUSTOM_PAGE_SIZES,
    ] {
        features.remove(off);
    }
    features
}

/// Rewrite `module` so that every call on an instance of it starts from the
/// state the instance had after its first call. `max_memory_bytes` caps the
/// rule's own memory; it also sizes the dirty map.
pub(crate) fn isolate(
    module: &[u8],
    contract: &ContractInfo,
    max_memory_bytes: u64,
) -> Result<Vec<u8>, IsolationError> {
    refuse_components(module)?;
    let shape = check(module, contract)?;
    let layout = Layout::new(max_memory_bytes);
    let mut rewriter = Rewriter::plan(&shape, contract, layout)?;
    let mut out = Module::new();
    rewriter
        .parse_core_module(&mut out, Parser::new(0), module)
        .map_err(|e| match e {
            reencode::Error::UserError(message) => IsolationError::Unsupported(message),
            other => IsolationError::Invalid(other.to_string()),
        })?;
    Ok(out.finish())
}

fn refuse_components(module: &[u8]) -> Result<(), IsolationError> {
    if module.len() >= 8 && module[..4] == *b"\0asm" && module[4..8] != [1, 0, 0, 0] {
        return Err(IsolationError::Unsupported(
            "is a component; the engine loads core modules (build the rule for \
             wasm32-unknown-unknown) and makes the component itself"
                .into(),
        ));
    }
    Ok(())
}

/// Check a module against the contract without rewriting it: valid under
/// the features a rule may use, importing only the contract, exporting
/// what the contract requires.
fn check(module: &[u8], contract: &ContractInfo) -> Result<ModuleShape, IsolationError> {
    Validator::new_with_features(rule_features())
        .validate_all(module)
        .map_err(|e| IsolationError::Invalid(e.to_string()))?;
    inspect(module, contract)
}

/// Check a module as [`isolate`] would, but leave it as it is. For
/// measuring what isolation costs; a rule loaded this way keeps state
/// between calls.
pub(crate) fn check_only(
    module: &[u8],
    contract: &ContractInfo,
) -> Result<Vec<u8>, IsolationError> {
    refuse_components(module)?;
    check(module, contract)?;
    Ok(module.to_vec())
}

/// Collect the module's types, imports, functions, globals and exports, and
/// refuse imports outside the contract.
fn inspect(module: &[u8], contract: &ContractInfo) -> Result<ModuleShape, IsolationError> {
    let invalid = |e: wasmparser::BinaryReaderError| IsolationError::Invalid(e.to_string());
    let mut shape = ModuleShape {
        types: Vec::new(),
        import_types: Vec::new(),
        import_names: Vec::new(),
        function_types: Vec::new(),
        globals: Vec::new(),
        exports: Vec::new(),
    };
    let mut memories = 0;
    for payload in Parser::new(0).parse_all(module) {
        match payload.map_err(invalid)? {
            Payload::TypeSection(reader) => {
                for group in reader.into_iter() {
                    for sub in group.map_err(invalid)?.into_types() {
                        match &sub.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(f) => shape.types.push(f.clone()),
                            _ => {
                                return Err(IsolationError::Unsupported(
                                    "declares a non-function type".into(),
                                ));
                            }
                        }
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(invalid)?;
                    let allowed = contract.allowed_import_modules.contains(import.module);
                    match import.ty {
                        TypeRef::Func(ty) if allowed => {
                            shape.import_types.push(ty);
                            shape
                                .import_names
                                .push((import.module.to_string(), import.name.to_string()));
                        }
                        _ if !allowed && other_contract(import.module).is_some() => {
                            return Err(IsolationError::WrongContract {
                                found: other_contract(import.module).unwrap_or_default(),
                                module: import.module.to_string(),
                                expected: CONTRACT_VERSION,
                            });
                        }
                        _ => {
                            return Err(IsolationError::ForbiddenImport {
                                module: import.module.to_string(),
                                name: import.name.to_string(),
                                allowed: contract.describe_allowed_imports(),
                            });
                        }
                    }
                }
            }
            Payload::FunctionSection(reader) => {
                for ty in reader {
                    shape.function_types.push(ty.map_err(invalid)?);
                }
            }
            Payload::MemorySection(reader) => memories += reader.count(),
            Payload::GlobalSection(reader) => {
                for global in reader {
                    let global = global.map_err(invalid)?;
                    if global.ty.mutable && !is_numeric(global.ty.content_type) {
                        return Err(IsolationError::Unsupported(
                            "has a mutable reference-typed global, which the reset cannot restore"
                                .into(),
                        ));
                    }
                    shape.globals.push(global.ty);
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(invalid)?;
                    shape
                        .exports
                        .push((export.name.to_string(), export.kind, export.index));
                }
            }
            _ => {}
        }
    }
    if memories != 1 {
        return Err(IsolationError::Unsupported(format!(
            "defines {memories} memories; a rule has exactly one, exported as `memory`"
        )));
    }
    if !shape
        .exports
        .iter()
        .any(|(n, k, _)| n == "memory" && *k == ExternalKind::Memory)
    {
        return Err(IsolationError::MissingExport("memory".into()));
    }
    for name in &contract.exported_functions {
        if shape.exported_func(name).is_none() {
            return Err(IsolationError::MissingExport(name.clone()));
        }
    }
    if !shape
        .exports
        .iter()
        .any(|(n, k, _)| is_realloc(n) && *k == ExternalKind::Func)
    {
        return Err(IsolationError::MissingExport("cabi_realloc".into()));
    }
    Ok(shape)
}

fn is_numeric(ty: wasmparser::ValType) -> bool {
    !matches!(ty, wasmparser::ValType::Ref(_))
}

fn is_realloc(export: &str) -> bool {
    export.starts_with("cabi_realloc")
        || export == "cabi_import_realloc"
        || export == "cabi_export_realloc"
}

/// Where the bookkeeping lives in the second memory.
#[derive(Clone, Copy)]
struct Layout {
    /// Blocks covered by the dirty map: the rule's whole allowed memory.
    max_blocks: u32,
    /// One byte per block: 1 if dirty.
    map_base: u32,
    /// The dirty blocks in the order they were first written, 4 bytes each.
    list_base: u32,
    /// Start of the snapshot of memory 0, page aligned.
    snapshot_base: u32,
    /// The rule's memory cap in wasm pages.
    max_pages: u64,
}

impl Layout {
    fn new(max_memory_bytes: u64) -> Self {
        let max_pages = max_memory_bytes.div_ceil(WASM_PAGE).max(1);
        let max_blocks = ((max_pages * WASM_PAGE) >> BLOCK_SHIFT) as u32;
        let list_base = max_blocks;
        let bookkeeping = u64::from(list_base) + 4 * u64::from(max_blocks);
        let snapshot_base = (bookkeeping.div_ceil(WASM_PAGE) * WASM_PAGE) as u32;
        Layout {
            max_blocks,
            map_base: 0,
            list_base,
            snapshot_base,
            max_pages,
        }
    }

    fn bookkeeping_pages(&self) -> u64 {
        u64::from(self.snapshot_base) / WASM_PAGE
    }

    /// Bytes of memory the second memory may reach: the bookkeeping plus a
    /// snapshot of the largest allowed memory 0.
    pub fn shadow_bytes(&self) -> u64 {
        (self.bookkeeping_pages() + self.max_pages) * WASM_PAGE
    }
}

/// How large the engine's shadow memory of an isolated rule can grow: the
/// engine's memory limiter must allow it.
pub(crate) fn shadow_memory_bytes(max_memory_bytes: u64) -> u64 {
    Layout::new(max_memory_bytes).shadow_bytes()
}

/// Indices of everything the pass adds.
struct Added {
    /// Type of `() -> ()`.
    ty_void: u32,
    /// Type of `(i32) -> ()`.
    ty_i32: u32,
    /// Type of `(i32, i32) -> ()`.
    ty_i32_i32: u32,
    /// Extra types for post-return functions the module lacked.
    extra_types: Vec<Vec<ValType>>,
    /// Index of the `memory-grew` import.
    memory_grew: u32,
    after_call: u32,
    mark_block: u32,
    mark_range: u32,
    global_snapshotted: u32,
    global_dirty_count: u32,
    global_snapshot_bytes: u32,
    /// Set by the reset when a call grew memory.
    global_grown: u32,
    /// For each mutable global of the module, the global holding its snapshot.
    saved_globals: Vec<(u32, u32)>,
}

/// A function the pass adds after the module's own.
enum Injected {
    AfterCall,
    MarkBlock,
    MarkRange,
    /// Calls the original realloc and marks the memory it hands out.
    Realloc {
        original: u32,
        ty: u32,
    },
    /// Calls the original post-return (if any), then `after_call`.
    PostReturn {
        original: Option<u32>,
        ty: u32,
    },
    /// Marks an import's return area, then calls it.
    ImportWithReturnArea {
        import: u32,
        ty: u32,
        area_bytes: u32,
    },
    /// An export's entry: retire the instance first if memory grew.
    Entry {
        original: u32,
        ty: u32,
    },
}

struct Rewriter<'a> {
    shape: &'a ModuleShape,
    layout: Layout,
    added: Added,
    injected: Vec<Injected>,
    /// Import index to the wrapper that marks its return area.
    import_wrappers: HashMap<u32, u32>,
    /// Export name to the function it should now point at.
    export_overrides: HashMap<String, u32>,
    /// Post-return exports to add because the module lacked them.
    new_exports: Vec<(String, u32)>,
    /// Set while re-encoding the name section, whose import names must not
    /// move to the wrappers.
    in_name_section: bool,
    emitted_imports: bool,
    emitted_globals: bool,
    /// Index of the next defined function in the code section.
    next_body: u32,
}

impl<'a> Rewriter<'a> {
    fn plan(
        shape: &'a ModuleShape,
        contract: &ContractInfo,
        layout: Layout,
    ) -> Result<Self, IsolationError> {
        let n_types = shape.types.len() as u32;
        let n_imports = shape.import_types.len() as u32;
        let n_defined = shape.function_types.len() as u32;
        let n_globals = shape.globals.len() as u32;

        let mut added = Added {
            ty_void: n_types,
            ty_i32: n_types + 1,
            ty_i32_i32: n_types + 2,
            extra_types: Vec::new(),
            memory_grew: n_imports,
            after_call: 0,
            mark_block: 0,
            mark_range: 0,
            global_snapshotted: n_globals,
            global_dirty_count: n_globals + 1,
            global_snapshot_bytes: n_globals + 2,
            global_grown: n_globals + 3,
            saved_globals: Vec::new(),
        };
        let mut next_global = n_globals + 4;
        for (index, global) in shape.globals.iter().enumerate() {
            if global.mutable {
                added.saved_globals.push((index as u32, next_global));
                next_global += 1;
            }
        }

        // Defined functions move up by one to make room for `memory-grew`.
        let first_injected = n_imports + 1 + n_defined;
        let mut injected = vec![
            Injected::AfterCall,
            Injected::MarkBlock,
            Injected::MarkRange,
        ];
        added.after_call = first_injected;
        added.mark_block = first_injected + 1;
        added.mark_range = first_injected + 2;

        let mut rewriter = Rewriter {
            shape,
            layout,
            added,
            injected: Vec::new(),
            import_wrappers: HashMap::new(),
            export_overrides: HashMap::new(),
            new_exports: Vec::new(),
            in_name_section: false,
            emitted_imports: false,
            emitted_globals: false,
            next_body: 0,
        };
        let shifted = |func: u32| if func < n_imports { func } else { func + 1 };

        for (name, kind, index) in &shape.exports {
            if *kind == ExternalKind::Func && is_realloc(name) {
                let wrapper = first_injected + injected.len() as u32;
                injected.push(Injected::Realloc {
                    original: shifted(*index),
                    ty: shape.type_index(*index),
                });
                rewriter.export_overrides.insert(name.clone(), wrapper);
            }
        }

        for export in &contract.exported_functions {
            let original = shape.exported_func(export).expect("checked in inspect");
            let entry = first_injected + injected.len() as u32;
            injected.push(Injected::Entry {
                original: shifted(original),
                ty: shape.type_index(original),
            });
            rewriter.export_overrides.insert(export.clone(), entry);

            let post_name = format!("cabi_post_{export}");
            let wrapper = first_injected + injected.len() as u32;
            match shape.exported_func(&post_name) {
                Some(original) => {
                    injected.push(Injected::PostReturn {
                        original: Some(shifted(original)),
                        ty: shape.type_index(original),
                    });
                    rewriter.export_overrides.insert(post_name, wrapper);
                }
                None => {
                    // The canonical ABI passes a post-return function the
                    // flattened results of the export it follows.
                    let func = shape.exported_func(export).expect("checked in inspect");
                    let params = shape
                        .func_type(func)
                        .results()
                        .iter()
                        .map(|t| val_type(*t))
                        .collect::<Result<Vec<_>, _>>()?;
                    let ty = n_types + 3 + rewriter.added.extra_types.len() as u32;
                    rewriter.added.extra_types.push(params);
                    injected.push(Injected::PostReturn { original: None, ty });
                    rewriter.new_exports.push((post_name, wrapper));
                }
            }
        }

        for (import, key) in shape.import_names.iter().enumerate() {
            if let Some(&area_bytes) = contract.return_areas.get(key) {
                let wrapper = first_injected + injected.len() as u32;
                let import = import as u32;
                injected.push(Injected::ImportWithReturnArea {
                    import,
                    ty: shape.import_types[import as usize],
                    area_bytes,
                });
                rewriter.import_wrappers.insert(import, wrapper);
            }
        }

        rewriter.injected = injected;
        Ok(rewriter)
    }

    fn memory_grew_import(&self) -> wasm_encoder::Import<'static> {
        wasm_encoder::Import {
            module: MEMORY_GREW_IMPORT.0,
            name: MEMORY_GREW_IMPORT.1,
            ty: EntityType::Function(self.added.ty_void),
        }
    }

    fn our_globals(&self, globals: &mut GlobalSection) {
        let mutable_i32 = GlobalType {
            val_type: ValType::I32,
            mutable: true,
            shared: false,
        };
        for _ in 0..4 {
            globals.global(mutable_i32, &ConstExpr::i32_const(0));
        }
        for (original, _) in &self.added.saved_globals {
            let ty = self.shape.globals[*original as usize].content_type;
            let (val_type, init) = match ty {
                wasmparser::ValType::I32 => (ValType::I32, ConstExpr::i32_const(0)),
                wasmparser::ValType::I64 => (ValType::I64, ConstExpr::i64_const(0)),
                wasmparser::ValType::F32 => (ValType::F32, ConstExpr::f32_const(0.0.into())),
                wasmparser::ValType::F64 => (ValType::F64, ConstExpr::f64_const(0.0.into())),
                wasmparser::ValType::V128 => (ValType::V128, ConstExpr::v128_const(0)),
                wasmparser::ValType::Ref(_) => unreachable!("refused in inspect"),
            };
            globals.global(
                GlobalType {
                    val_type,
                    mutable: true,
                    shared: false,
                },
                &init,
            );
        }
    }

    /// Emit the import or global section the module lacks, at the right
    /// place in section order.
    fn emit_missing_sections(
        &mut self,
        module: &mut Module,
        before: Option<wasm_encoder::SectionId>,
    ) {
        use wasm_encoder::SectionId as S;
        let position = |s: Option<S>| match s {
            None => u8::MAX,
            Some(S::Type) => 1,
            Some(S::Import) => 2,
            Some(S::Function) => 3,
            Some(S::Table) => 4,
            Some(S::Memory) => 5,
            Some(S::Tag) => 6,
            Some(S::Global) => 7,
            Some(S::Export) => 8,
            Some(S::Start) => 9,
            Some(S::Element) => 10,
            Some(S::DataCount) => 11,
            Some(S::Code) => 12,
            Some(S::Data) => 13,
            Some(_) => 0,
        };
        let next = position(before);
        if !self.emitted_imports && next > 2 {
            let mut imports = ImportSection::new();
            imports.import(
                MEMORY_GREW_IMPORT.0,
                MEMORY_GREW_IMPORT.1,
                self.memory_grew_import().ty,
            );
            module.section(&imports);
            self.emitted_imports = true;
        }
        if !self.emitted_globals && next > 7 {
            let mut globals = GlobalSection::new();
            self.our_globals(&mut globals);
            module.section(&globals);
            self.emitted_globals = true;
        }
    }
}

fn val_type(ty: wasmparser::ValType) -> Result<ValType, IsolationError> {
    Ok(match ty {
        wasmparser::ValType::I32 => ValType::I32,
        wasmparser::ValType::I64 => ValType::I64,
        wasmparser::ValType::F32 => ValType::F32,
        wasmparser::ValType::F64 => ValType::F64,
        wasmparser::ValType::V128 => ValType::V128,
        wasmparser::ValType::Ref(_) => {
            return Err(IsolationError::Unsupported(
                "returns a reference type from an export".into(),
            ));
        }
    })
}

type ReencodeResult<T = ()> = Result<T, reencode::Error<String>>;

/// Scratch locals appended to every rewritten function.
struct Scratch {
    addr: u32,
    block: u32,
    len: u32,
    src: u32,
    i32_value: u32,
    i64_value: u32,
    f32_value: u32,
    f64_value: u32,
    v128_value: u32,
}

impl Scratch {
    fn after(n_locals: u32) -> Self {
        Scratch {
            addr: n_locals,
            block: n_locals + 1,
            len: n_locals + 2,
            src: n_locals + 3,
            i32_value: n_locals + 4,
            i64_value: n_locals + 5,
            f32_value: n_locals + 6,
            f64_value: n_locals + 7,
            v128_value: n_locals + 8,
        }
    }

    fn declarations() -> [(u32, ValType); 5] {
        [
            (5, ValType::I32),
            (1, ValType::I64),
            (1, ValType::F32),
            (1, ValType::F64),
            (1, ValType::V128),
        ]
    }
}

/// An access to the shadow memory (memory 1), which only injected code uses.
fn shadow(offset: u32, align: u32) -> MemArg {
    MemArg {
        offset: u64::from(offset),
        align,
        memory_index: 1,
    }
}

impl Rewriter<'_> {
    /// The value type a store pops, or `None` if `op` is not a store.
    fn stored_type(&self, op: &Operator, scratch: &Scratch) -> Option<(u64, u32)> {
        use Operator as O;
        let (memarg, local) = match op {
            O::I32Store { memarg } | O::I32Store8 { memarg } | O::I32Store16 { memarg } => {
                (memarg, scratch.i32_value)
            }
            O::I64Store { memarg }
            | O::I64Store8 { memarg }
            | O::I64Store16 { memarg }
            | O::I64Store32 { memarg } => (memarg, scratch.i64_value),
            O::F32Store { memarg } => (memarg, scratch.f32_value),
            O::F64Store { memarg } => (memarg, scratch.f64_value),
            O::V128Store { memarg }
            | O::V128Store8Lane { memarg, .. }
            | O::V128Store16Lane { memarg, .. }
            | O::V128Store32Lane { memarg, .. }
            | O::V128Store64Lane { memarg, .. } => (memarg, scratch.v128_value),
            _ => return None,
        };
        Some((memarg.offset, local))
    }

    /// Mark the block holding `addr + offset` dirty, without a branch:
    /// append the block to the dirty list unconditionally, but advance the
    /// list's length only if the block was clean, then mark it. Branch-free
    /// code keeps the fuel and epoch instrumentation (which works per basic
    /// block) from multiplying the cost of every store.
    ///
    /// A block past the map means an address past the rule's memory cap;
    /// the store itself then traps and the instance is retired, so the
    /// stray bookkeeping write it makes first is never read.
    fn mark_block_of(&self, f: &mut Function, addr: u32, offset: u64, block: u32) {
        let l = self.layout;
        let count = self.added.global_dirty_count;
        f.instruction(&Instruction::LocalGet(addr));
        if offset != 0 {
            f.instruction(&Instruction::I32Const(offset as u32 as i32));
            f.instruction(&Instruction::I32Add);
        }
        f.instructions()
            .i32_const(BLOCK_SHIFT as i32)
            .i32_shr_u()
            .local_set(block)
            // list[count] = block
            .global_get(count)
            .i32_const(2)
            .i32_shl()
            .local_get(block)
            .i32_store(shadow(l.list_base, 2))
            // count += (map[block] == 0)
            .global_get(count)
            .local_get(block)
            .i32_load8_u(shadow(l.map_base, 0))
            .i32_eqz()
            .i32_add()
            .global_set(count)
            // map[block] = 1
            .local_get(block)
            .i32_const(1)
            .i32_store8(shadow(l.map_base, 0));
    }

    /// Mark `len` bytes at the address in local `addr` dirty, inline when
    /// they span at most two blocks, through `mark_range` otherwise.
    fn mark_small_range(&self, f: &mut Function, addr: u32, len: u32, block: u32) {
        if len == 0 {
            return;
        }
        // The restore copies STRADDLE_SLACK bytes past each dirty block, so
        // a range that short is covered by the block of its first byte.
        self.mark_block_of(f, addr, 0, block);
        if len > STRADDLE_SLACK && len <= BLOCK_BYTES {
            self.mark_block_of(f, addr, u64::from(len - 1), block);
        } else if len > BLOCK_BYTES {
            f.instruction(&Instruction::LocalGet(addr));
            f.instruction(&Instruction::I32Const(len as i32));
            f.instruction(&Instruction::Call(self.added.mark_range));
        }
    }

    fn instrument_body(
        &mut self,
        code: &mut CodeSection,
        body: wasmparser::FunctionBody<'_>,
    ) -> ReencodeResult {
        let func = self.shape.import_types.len() as u32 + self.next_body;
        self.next_body += 1;
        let mut n_locals = self.shape.func_type(func).params().len() as u32;
        let mut locals = Vec::new();
        for pair in body.get_locals_reader()? {
            let (count, ty) = pair?;
            locals.push((count, self.val_type(ty)?));
            n_locals += count;
        }
        let scratch = Scratch::after(n_locals);
        locals.extend(Scratch::declarations());
        let mut f = Function::new(locals);

        let mut reader = body.get_operators_reader()?;
        while !reader.eof() {
            let op = reader.read()?;
            if let Some((offset, value)) = self.stored_type(&op, &scratch) {
                f.instruction(&Instruction::LocalSet(value));
                f.instruction(&Instruction::LocalSet(scratch.addr));
                self.mark_block_of(&mut f, scratch.addr, offset, scratch.block);
                f.instruction(&Instruction::LocalGet(scratch.addr));
                f.instruction(&Instruction::LocalGet(value));
                f.instruction(&self.instruction(op)?);
                continue;
            }
            match op {
                Operator::MemoryFill { .. } => {
                    f.instruction(&Instruction::LocalSet(scratch.len));
                    f.instruction(&Instruction::LocalSet(scratch.i32_value));
                    f.instruction(&Instruction::LocalSet(scratch.addr));
                    self.mark_range_call(&mut f, &scratch);
                    f.instruction(&Instruction::LocalGet(scratch.addr));
                    f.instruction(&Instruction::LocalGet(scratch.i32_value));
                    f.instruction(&Instruction::LocalGet(scratch.len));
                    f.instruction(&self.instruction(op)?);
                }
                Operator::MemoryCopy { .. } => {
                    f.instruction(&Instruction::LocalSet(scratch.len));
                    f.instruction(&Instruction::LocalSet(scratch.src));
                    f.instruction(&Instruction::LocalSet(scratch.addr));
                    self.mark_range_call(&mut f, &scratch);
                    f.instruction(&Instruction::LocalGet(scratch.addr));
                    f.instruction(&Instruction::LocalGet(scratch.src));
                    f.instruction(&Instruction::LocalGet(scratch.len));
                    f.instruction(&self.instruction(op)?);
                }
                Operator::MemoryInit { .. } | Operator::DataDrop { .. } => {
                    return Err(reencode::Error::UserError(
                        "uses passive data segments (memory.init or data.drop), whose dropped \
                         state would outlive a call"
                            .into(),
                    ));
                }
                Operator::TableSet { .. }
                | Operator::TableGrow { .. }
                | Operator::TableFill { .. }
                | Operator::TableCopy { .. }
                | Operator::TableInit { .. }
                | Operator::ElemDrop { .. } => {
                    return Err(reencode::Error::UserError(
                        "mutates a table, which would outlive a call".into(),
                    ));
                }
                other => {
                    f.instruction(&self.instruction(other)?);
                }
            }
        }
        code.function(&f);
        Ok(())
    }

    fn mark_range_call(&self, f: &mut Function, scratch: &Scratch) {
        f.instruction(&Instruction::LocalGet(scratch.addr));
        f.instruction(&Instruction::LocalGet(scratch.len));
        f.instruction(&Instruction::Call(self.added.mark_range));
    }

    fn injected_type(&self, injected: &Injected) -> u32 {
        match injected {
            Injected::AfterCall => self.added.ty_void,
            Injected::MarkBlock => self.added.ty_i32,
            Injected::MarkRange => self.added.ty_i32_i32,
            Injected::Realloc { ty, .. }
            | Injected::PostReturn { ty, .. }
            | Injected::ImportWithReturnArea { ty, .. }
            | Injected::Entry { ty, .. } => *ty,
        }
    }

    fn params_of_type(&self, ty: u32) -> usize {
        let n_types = self.shape.types.len() as u32;
        if ty < n_types {
            self.shape.types[ty as usize].params().len()
        } else if ty == self.added.ty_void {
            0
        } else if ty == self.added.ty_i32 {
            1
        } else if ty == self.added.ty_i32_i32 {
            2
        } else {
            self.added.extra_types[(ty - n_types - 3) as usize].len()
        }
    }

    fn injected_body(&self, injected: &Injected) -> ReencodeResult<Function> {
        let f = match injected {
            Injected::AfterCall => self.after_call_body(),
            Injected::MarkBlock => self.mark_block_body(),
            Injected::MarkRange => self.mark_range_body(),
            Injected::Realloc { original, ty } => {
                let realloc_type = &self.shape.types[*ty as usize];
                if realloc_type.params() != [wasmparser::ValType::I32; 4]
                    || realloc_type.results() != [wasmparser::ValType::I32]
                {
                    return Err(reencode::Error::UserError(
                        "exports a `cabi_realloc` whose signature is not \
                         (i32, i32, i32, i32) -> i32"
                            .into(),
                    ));
                }
                let mut f = Function::new([(1, ValType::I32)]);
                for param in 0..4 {
                    f.instruction(&Instruction::LocalGet(param));
                }
                f.instruction(&Instruction::Call(*original));
                f.instruction(&Instruction::LocalSet(4));
                f.instruction(&Instruction::LocalGet(4));
                f.instruction(&Instruction::LocalGet(3));
                f.instruction(&Instruction::Call(self.added.mark_range));
                f.instruction(&Instruction::LocalGet(4));
                f
            }
            Injected::PostReturn { original, ty } => {
                let mut f = Function::new([]);
                if let Some(original) = original {
                    for param in 0..self.params_of_type(*ty) as u32 {
                        f.instruction(&Instruction::LocalGet(param));
                    }
                    f.instruction(&Instruction::Call(*original));
                }
                f.instruction(&Instruction::Call(self.added.after_call));
                f
            }
            Injected::Entry { original, ty } => {
                let mut f = Function::new([]);
                f.instructions()
                    .global_get(self.added.global_grown)
                    .if_(BlockType::Empty)
                    .call(self.added.memory_grew)
                    .end();
                for param in 0..self.params_of_type(*ty) as u32 {
                    f.instruction(&Instruction::LocalGet(param));
                }
                f.instruction(&Instruction::Call(*original));
                f
            }
            Injected::ImportWithReturnArea {
                import,
                ty,
                area_bytes,
            } => {
                let n_params = self.params_of_type(*ty) as u32;
                let mut f = Function::new([(1, ValType::I32)]);
                // The return area is the last parameter by the canonical ABI.
                self.mark_small_range(&mut f, n_params - 1, *area_bytes, n_params);
                for param in 0..n_params {
                    f.instruction(&Instruction::LocalGet(param));
                }
                f.instruction(&Instruction::Call(*import));
                f
            }
        };
        let mut f = f;
        f.instruction(&Instruction::End);
        Ok(f)
    }

    /// `mark_block(block)`: record a block as dirty, once.
    fn mark_block_body(&self) -> Function {
        let l = self.layout;
        let count = self.added.global_dirty_count;
        let mut f = Function::new([]);
        f.instructions()
            .local_get(0)
            .i32_const(l.max_blocks as i32)
            .i32_ge_u()
            .if_(BlockType::Empty)
            .return_()
            .end()
            .local_get(0)
            .i32_load8_u(shadow(l.map_base, 0))
            .if_(BlockType::Empty)
            .return_()
            .end()
            .local_get(0)
            .i32_const(1)
            .i32_store8(shadow(l.map_base, 0))
            .global_get(count)
            .i32_const(2)
            .i32_shl()
            .local_get(0)
            .i32_store(shadow(l.list_base, 2))
            .global_get(count)
            .i32_const(1)
            .i32_add()
            .global_set(count);
        f
    }

    /// `mark_range(start, len)`: mark every block of a range dirty.
    fn mark_range_body(&self) -> Function {
        let l = self.layout;
        let (start, len, block, last, wide) = (0, 1, 2, 3, 4);
        let mut f = Function::new([(2, ValType::I32), (1, ValType::I64)]);
        f.instructions()
            .local_get(len)
            .i32_eqz()
            .if_(BlockType::Empty)
            .return_()
            .end()
            .local_get(start)
            .i32_const(BLOCK_SHIFT as i32)
            .i32_shr_u()
            .local_set(block)
            // last = min((start + len - 1) >> SHIFT, max_blocks - 1), in 64
            // bits so that a range running off the end cannot wrap around.
            .local_get(start)
            .i64_extend_i32_u()
            .local_get(len)
            .i64_extend_i32_u()
            .i64_add()
            .i64_const(1)
            .i64_sub()
            .i64_const(i64::from(BLOCK_SHIFT))
            .i64_shr_u()
            .local_tee(wide)
            .i64_const(i64::from(l.max_blocks) - 1)
            .local_get(wide)
            .i64_const(i64::from(l.max_blocks) - 1)
            .i64_lt_u()
            .select()
            .i32_wrap_i64()
            .local_set(last)
            .block(BlockType::Empty)
            .loop_(BlockType::Empty)
            .local_get(block)
            .local_get(last)
            .i32_gt_u()
            .br_if(1)
            .local_get(block)
            .call(self.added.mark_block)
            .local_get(block)
            .i32_const(1)
            .i32_add()
            .local_set(block)
            .br(0)
            .end()
            .end();
        f
    }

    /// `after_call()`: the first time, take the snapshot; every later time,
    /// restore dirty blocks and globals from it.
    fn after_call_body(&self) -> Function {
        let l = self.layout;
        let a = &self.added;
        let (i, start, end, addr, len) = (0, 1, 2, 3, 4);
        let mut f = Function::new([(5, ValType::I32)]);
        let mut ins = f.instructions();
        let map = shadow(l.map_base, 0);

        ins.global_get(a.global_snapshotted).if_(BlockType::Empty);
        // Reset: for each dirty block still marked, grow it into the run of
        // adjacent dirty blocks around it (a call's stack frames are one
        // such run), unmark the run and restore it with one copy.
        ins.i32_const(0)
            .local_set(i)
            .block(BlockType::Empty)
            .loop_(BlockType::Empty)
            .local_get(i)
            .global_get(a.global_dirty_count)
            .i32_ge_u()
            .br_if(1)
            .local_get(i)
            .i32_const(2)
            .i32_shl()
            .i32_load(shadow(l.list_base, 2))
            .local_set(start)
            .local_get(i)
            .i32_const(1)
            .i32_add()
            .local_set(i)
            // Restored already, as part of an earlier run.
            .local_get(start)
            .i32_load8_u(map)
            .i32_eqz()
            .br_if(0)
            // Walk back to the first block of the run.
            .block(BlockType::Empty)
            .loop_(BlockType::Empty)
            .local_get(start)
            .i32_eqz()
            .br_if(1)
            .local_get(start)
            .i32_const(1)
            .i32_sub()
            .i32_load8_u(map)
            .i32_eqz()
            .br_if(1)
            .local_get(start)
            .i32_const(1)
            .i32_sub()
            .local_set(start)
            .br(0)
            .end()
            .end()
            // Walk forward to its end, unmarking as we go.
            .local_get(start)
            .local_set(end)
            .block(BlockType::Empty)
            .loop_(BlockType::Empty)
            .local_get(end)
            .i32_const(l.max_blocks as i32)
            .i32_ge_u()
            .br_if(1)
            .local_get(end)
            .i32_load8_u(map)
            .i32_eqz()
            .br_if(1)
            .local_get(end)
            .i32_const(0)
            .i32_store8(map)
            .local_get(end)
            .i32_const(1)
            .i32_add()
            .local_set(end)
            .br(0)
            .end()
            .end()
            // Copy [start, end) blocks plus the straddle slack, clamped to
            // the snapshot (blocks past it only exist if memory grew).
            .local_get(start)
            .i32_const(BLOCK_SHIFT as i32)
            .i32_shl()
            .local_tee(addr)
            .global_get(a.global_snapshot_bytes)
            .i32_lt_u()
            .if_(BlockType::Empty)
            .local_get(end)
            .local_get(start)
            .i32_sub()
            .i32_const(BLOCK_SHIFT as i32)
            .i32_shl()
            .i32_const(STRADDLE_SLACK as i32)
            .i32_add()
            .local_tee(len)
            .global_get(a.global_snapshot_bytes)
            .local_get(addr)
            .i32_sub()
            .local_get(len)
            .global_get(a.global_snapshot_bytes)
            .local_get(addr)
            .i32_sub()
            .i32_lt_u()
            .select()
            .local_set(len)
            .local_get(addr)
            .local_get(addr)
            .i32_const(l.snapshot_base as i32)
            .i32_add()
            .local_get(len)
            .memory_copy(0, 1)
            .end()
            .br(0)
            .end()
            .end()
            .i32_const(0)
            .global_set(a.global_dirty_count);
        for (original, saved) in &a.saved_globals {
            ins.global_get(*saved).global_set(*original);
        }
        // A grown memory cannot be shrunk back: flag it for the next entry.
        ins.memory_size(0)
            .i32_const(16)
            .i32_shl()
            .global_get(a.global_snapshot_bytes)
            .i32_ne()
            .if_(BlockType::Empty)
            .i32_const(1)
            .global_set(a.global_grown)
            .end();

        ins.else_();
        // Snapshot: copy memory 0 and the globals, forget earlier marks.
        ins.memory_size(0)
            .memory_grow(1)
            .i32_const(-1)
            .i32_eq()
            .if_(BlockType::Empty)
            .unreachable()
            .end()
            .memory_size(0)
            .i32_const(16)
            .i32_shl()
            .global_set(a.global_snapshot_bytes)
            .i32_const(l.snapshot_base as i32)
            .i32_const(0)
            .global_get(a.global_snapshot_bytes)
            .memory_copy(1, 0);
        for (original, saved) in &a.saved_globals {
            ins.global_get(*original).global_set(*saved);
        }
        ins.i32_const(0)
            .local_set(i)
            .block(BlockType::Empty)
            .loop_(BlockType::Empty)
            .local_get(i)
            .global_get(a.global_dirty_count)
            .i32_ge_u()
            .br_if(1)
            .local_get(i)
            .i32_const(2)
            .i32_shl()
            .i32_load(shadow(l.list_base, 2))
            .i32_const(0)
            .i32_store8(shadow(l.map_base, 0))
            .local_get(i)
            .i32_const(1)
            .i32_add()
            .local_set(i)
            .br(0)
            .end()
            .end()
            .i32_const(0)
            .global_set(a.global_dirty_count)
            .i32_const(1)
            .global_set(a.global_snapshotted);
        ins.end();
        f
    }
}

impl Reencode for Rewriter<'_> {
    type Error = String;

    fn function_index(&mut self, func: u32) -> ReencodeResult<u32> {
        let n_imports = self.shape.import_types.len() as u32;
        Ok(if func >= n_imports {
            func + 1
        } else if self.in_name_section {
            func
        } else {
            self.import_wrappers.get(&func).copied().unwrap_or(func)
        })
    }

    fn intersperse_section_hook(
        &mut self,
        module: &mut Module,
        _after: Option<wasm_encoder::SectionId>,
        before: Option<wasm_encoder::SectionId>,
    ) -> ReencodeResult {
        self.emit_missing_sections(module, before);
        Ok(())
    }

    fn parse_type_section(
        &mut self,
        types: &mut TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> ReencodeResult {
        reencode::utils::parse_type_section(self, types, section)?;
        types.ty().function([], []);
        types.ty().function([ValType::I32], []);
        types.ty().function([ValType::I32, ValType::I32], []);
        for params in &self.added.extra_types {
            types.ty().function(params.iter().copied(), []);
        }
        Ok(())
    }

    fn parse_import_section(
        &mut self,
        imports: &mut ImportSection,
        section: wasmparser::ImportSectionReader<'_>,
    ) -> ReencodeResult {
        reencode::utils::parse_import_section(self, imports, section)?;
        imports.import(
            MEMORY_GREW_IMPORT.0,
            MEMORY_GREW_IMPORT.1,
            self.memory_grew_import().ty,
        );
        self.emitted_imports = true;
        Ok(())
    }

    fn parse_function_section(
        &mut self,
        functions: &mut FunctionSection,
        section: wasmparser::FunctionSectionReader<'_>,
    ) -> ReencodeResult {
        reencode::utils::parse_function_section(self, functions, section)?;
        for injected in &self.injected {
            functions.function(self.injected_type(injected));
        }
        Ok(())
    }

    fn parse_memory_section(
        &mut self,
        memories: &mut MemorySection,
        section: wasmparser::MemorySectionReader<'_>,
    ) -> ReencodeResult {
        let l = self.layout;
        for memory in section {
            let memory = memory?;
            if memory.initial > l.max_pages {
                return Err(reencode::Error::UserError(format!(
                    "starts with {} KiB of memory, over the cap of {} KiB",
                    memory.initial * 64,
                    l.max_pages * 64
                )));
            }
            let maximum = memory.maximum.map_or(l.max_pages, |m| m.min(l.max_pages));
            memories.memory(MemoryType {
                minimum: memory.initial,
                maximum: Some(maximum),
                memory64: false,
                shared: false,
                page_size_log2: None,
            });
        }
        memories.memory(MemoryType {
            minimum: l.bookkeeping_pages(),
            maximum: Some(l.bookkeeping_pages() + l.max_pages),
            memory64: false,
            shared: false,
            page_size_log2: None,
        });
        Ok(())
    }

    fn parse_global_section(
        &mut self,
        globals: &mut GlobalSection,
        section: wasmparser::GlobalSectionReader<'_>,
    ) -> ReencodeResult {
        reencode::utils::parse_global_section(self, globals, section)?;
        self.our_globals(globals);
        self.emitted_globals = true;
        Ok(())
    }

    fn parse_export_section(
        &mut self,
        exports: &mut ExportSection,
        section: wasmparser::ExportSectionReader<'_>,
    ) -> ReencodeResult {
        for export in section {
            let export = export?;
            match self.export_overrides.get(export.name) {
                Some(&func) if export.kind == ExternalKind::Func => {
                    exports.export(export.name, ExportKind::Func, func);
                }
                _ => self.parse_export(exports, export)?,
            }
        }
        for (name, func) in &self.new_exports {
            exports.export(name, ExportKind::Func, *func);
        }
        Ok(())
    }

    fn parse_custom_section(
        &mut self,
        module: &mut Module,
        section: wasmparser::CustomSectionReader<'_>,
    ) -> ReencodeResult {
        // The engine embeds the contract itself; the rule's own copy of it
        // (from its bindings generator) would only be a second opinion.
        if section.name().starts_with("component-type") {
            return Ok(());
        }
        reencode::utils::parse_custom_section(self, module, section)
    }

    fn custom_name_section(
        &mut self,
        section: wasmparser::NameSectionReader<'_>,
    ) -> ReencodeResult<wasm_encoder::NameSection> {
        self.in_name_section = true;
        let names = reencode::utils::custom_name_section(self, section);
        self.in_name_section = false;
        names
    }

    fn parse_code_section(
        &mut self,
        code: &mut CodeSection,
        section: wasmparser::CodeSectionReader<'_>,
    ) -> ReencodeResult {
        for body in section {
            self.instrument_body(code, body?)?;
        }
        for injected in &self.injected {
            code.function(&self.injected_body(injected)?);
        }
        Ok(())
    }
}
