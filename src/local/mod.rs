//! The local engine: statements that read only accelerated datasets,
//! answered by DataFusion in process, with Trino's answer.
//!
//! A statement runs here only when every relation it reads is a loaded
//! dataset the user may read, and every construct in it is on the allowlist
//! ([`check`]), whose DataFusion semantics the differential suite shows
//! equal to Trino's. Results are cast to the Arrow types the Trino path
//! gives, with Trino's names and type names. Everything else, and anything
//! over the local limits (memory, concurrency, time, result size), is
//! refused with a reason and goes to Trino.

/// The methods a plan with one input (field `$input`) and no expressions
/// of its own shares; it makes itself over a new input with `over`.
macro_rules! unary_plan {
    ($name:literal, $input:ident) => {
        fn name(&self) -> &'static str {
            $name
        }

        fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
            vec![&self.$input]
        }

        fn apply_expressions(
            &self,
            _: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
        ) -> Result<TreeNodeRecursion> {
            Ok(TreeNodeRecursion::Continue)
        }

        fn replace_children(
            self: Arc<Self>,
            children: Vec<Arc<dyn ExecutionPlan>>,
            _: ReplaceChildrenOptions,
        ) -> Result<Arc<dyn ExecutionPlan>> {
            match <[Arc<dyn ExecutionPlan>; 1]>::try_from(children) {
                Ok([input]) => Ok(Arc::new(self.over(input))),
                Err(children) => {
                    datafusion::common::internal_err!("{} has one input, not {}", $name, children.len())
                }
            }
        }

        fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
            use datafusion::physical_plan::execution_plan::ChildrenPropertiesMode;
            self.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
        }
    };
}

pub mod check;
mod eager;
mod functions;
mod joins;
mod partials;
mod reuse;
mod rewrite;
mod unordered;

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList, MemorySchemaProvider,
};
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::SessionState;
use datafusion::execution::memory_pool::GreedyMemoryPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::expr::Cast;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::prelude::SessionConfig;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{self as ast, SelectItem, SetExpr};
use futures::StreamExt;
use tokio::sync::Semaphore;

use crate::accel::Datasets;
use crate::router::{self, Execution, Refusal, Session};
use crate::sql::Statement;

/// Limits of local work.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Memory DataFusion's operators may hold, all queries together.
    pub memory: usize,
    /// Local queries admitted at once, running or waiting; more go to Trino.
    pub concurrency: usize,
    /// Of those, the ones planning or running; the others wait in order.
    /// `0`: one more than the cores.
    pub running: usize,
    /// Longest a local query may take, waiting included, before it is
    /// handed to Trino.
    pub timeout: Duration,
    /// Largest local answer; larger ones are streamed by Trino.
    pub max_result_bytes: usize,
    /// Memory of the partial aggregates kept per slice ([`partials`]);
    /// `0` keeps none.
    pub partials_memory: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: 1 << 30,
            concurrency: 64,
            running: 0,
            timeout: Duration::from_secs(10),
            max_result_bytes: 64 << 20,
            partials_memory: 64 << 20,
        }
    }
}

/// Runs statements on accelerated datasets.
#[derive(Debug)]
pub struct LocalEngine {
    datasets: Datasets,
    /// Functions, configuration and memory pool; each query adds its tables.
    base: SessionState,
    slots: Semaphore,
    /// Admitted queries plan and run a few at a time ([`Limits::running`]),
    /// in the order they came, rather than all at once.
    lanes: Semaphore,
    limits: Limits,
    /// Plans made to describe a statement, each taken by the run that
    /// follows (clients prepare, then execute at once); unused ones expire.
    described: moka::sync::Cache<(Session, String), Arc<std::sync::Mutex<Option<Planned>>>>,
    /// Plans kept for statements that differ only in their time range.
    templates: moka::sync::Cache<TemplateKey, Template>,
    /// The partial aggregates of kept plans, per whole slice.
    partials: Option<Arc<partials::Partials>>,
    /// Where local queries execute.
    cpu: CpuRuntime,
}

/// A runtime of its own for DataFusion's CPU-bound work, one thread per
/// core; shut down without waiting when the engine goes.
#[derive(Debug)]
struct CpuRuntime(Option<tokio::runtime::Runtime>);

impl CpuRuntime {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("flightdeck-local")
            .enable_time()
            .build()
            .expect("a runtime for local queries starts");
        CpuRuntime(Some(runtime))
    }

    fn spawn<F>(&self, work: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.0.as_ref().expect("running until dropped").spawn(work)
    }
}

impl Drop for CpuRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl LocalEngine {
    pub fn new(datasets: Datasets, limits: Limits) -> Self {
        let config = SessionConfig::new()
            // Trino sorts NULLs last in both directions.
            .set_str("datafusion.sql_parser.default_null_ordering", "nulls_last")
            // `1.5` is a decimal in Trino.
            .set_str("datafusion.sql_parser.parse_float_as_decimal", "true")
            // Dashboard queries are simple: one pass of the logical
            // optimizer pushes the filters to the scan and prunes the
            // projections; a second pass only confirmed it.
            .set_usize("datafusion.optimizer.max_passes", 1)
            // A kept plan runs many times, at once too: no operator may
            // filter another's input by what it has seen so far.
            .set_bool("datafusion.optimizer.enable_dynamic_filter_pushdown", false)
            .with_information_schema(false)
            // Each query brings its own catalogs; a default one would
            // replace the session catalog's (same name).
            .with_create_default_catalog_and_schema(false);
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(GreedyMemoryPool::new(limits.memory)))
            .build_arc()
            .expect("a runtime of a memory pool builds");
        // DataFusion's rules, with the join order chosen and aggregates
        // moved below joins once the filters are pushed down, before the
        // projections are pruned.
        let mut rules = datafusion::optimizer::Optimizer::new().rules;
        let at = rules.iter().position(|r| r.name() == "optimize_projections").unwrap_or(rules.len());
        rules.insert(at, Arc::new(eager::EagerAggregation));
        rules.insert(at, Arc::new(joins::JoinOrder));
        // First, while the sorts the statement asks for are still there.
        let mut physical = datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new().rules;
        physical.insert(0, Arc::new(unordered::UnorderedGrouping));
        let mut base = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            .with_optimizer_rules(rules)
            .with_physical_optimizer_rules(physical)
            .build();
        for f in functions::all() {
            datafusion::execution::FunctionRegistry::register_udf(&mut base, f).expect("a function registers");
        }
        let described = moka::sync::Cache::builder().max_capacity(256).time_to_live(Duration::from_secs(5)).build();
        LocalEngine {
            datasets,
            base,
            slots: Semaphore::new(limits.concurrency.max(1)),
            lanes: Semaphore::new(match limits.running {
                // One more than the cores: a query between its planning and
                // its execution, or handing over its answer, leaves a core
                // to the next.
                0 => std::thread::available_parallelism().map_or(1, |n| n.get()) + 1,
                n => n,
            }),
            partials: (limits.partials_memory > 0).then(|| Arc::new(partials::Partials::new(limits.partials_memory))),
            limits,
            described,
            templates: moka::sync::Cache::builder().max_capacity(1024).time_to_idle(Duration::from_secs(600)).build(),
            cpu: CpuRuntime::new(),
        }
    }

    /// Plans `stmt` for `session`: the DataFusion plan and the schema of the
    /// answer as Trino gives it, or why Trino must answer.
    pub async fn plan(&self, session: &Session, stmt: &Statement) -> Result<Planned, Refusal> {
        self.planned(self.read(session, stmt).await?).await
    }

    /// Reads `stmt` for `session`: the statement and the datasets it reads,
    /// once Trino says the user may read them.
    async fn read(&self, session: &Session, stmt: &Statement) -> Result<Read, Refusal> {
        if !matches!(stmt.kind(), crate::sql::Kind::Query) {
            return Err(Refusal::new("statement", "not a query"));
        }
        let query = match stmt.syntax() {
            Some(mut statements) if statements.len() == 1 => match statements.remove(0) {
                ast::Statement::Query(q) => q,
                _ => return Err(Refusal::new("statement", "not a query")),
            },
            _ => return Err(Refusal::new("syntax", "not read by the local parser")),
        };
        let names = output_names(&query)?;
        read_as_trino(&query)?;
        let mut query = query;
        exponent_doubles(&mut query);
        timestamps_in_milliseconds(&mut query);
        let statement = DfStatement::Statement(Box::new(ast::Statement::Query(query)));
        let found = self.found(session, &statement).await?;
        let versions = found.tables.iter().map(|(_, name, t)| (name.clone(), t.version_number())).collect();
        // A query running beside others gains nothing from spreading over
        // the cores and pays for it (a repartition, a second aggregation
        // phase); alone, it takes them all.
        let partitions = match self.running() > 1 {
            true => 1,
            false => self.base.config().target_partitions(),
        };
        Ok(Read { statement, names, found, versions, partitions })
    }

    /// How many skeletons it keeps a plan for, or knows it cannot keep one
    /// for ([`reuse`]).
    pub fn skeletons(&self) -> u64 {
        self.templates.run_pending_tasks();
        self.templates.entry_count()
    }

    /// How many partial aggregates of whole slices it keeps ([`partials`]).
    pub fn partials_kept(&self) -> u64 {
        self.partials.as_ref().map_or(0, |p| p.len())
    }

    /// The plan of a statement read.
    async fn planned(&self, read: Read) -> Result<Planned, Refusal> {
        let (state, _) = self.session_state(&read)?;
        planned_in(state, read).await
    }

    /// The plan of a statement read, its skeleton's kept plan reused when
    /// it has one ([`reuse`]).
    async fn planned_reusing(&self, session: &Session, read: Read) -> Result<Planned, Refusal> {
        let shape = match (&read.statement, read.found.tables.as_slice()) {
            (DfStatement::Statement(s), [(_, _, table)]) => match (s.as_ref(), table.sorted_by()) {
                (ast::Statement::Query(q), Some(time)) => reuse::shape(q.as_ref(), time),
                _ => None,
            },
            _ => None,
        };
        let Some(shape) = shape else { return self.planned(read).await };
        let table = read.found.tables[0].2.clone();
        let plan =
            Arc::new(partials::PlanKey { session: session.clone(), text: shape.text, partitions: read.partitions });
        let key = TemplateKey { plan, versions: read.versions.clone() };
        let (template, input, outcome) = match self.templates.get(&key) {
            Some(None) => (None, None, "not kept"),
            Some(Some(kept)) => {
                let input = scan_input(&kept.session, shape.bounds, &table).await;
                (Some(kept), input, "reused")
            }
            None => {
                let (state, registered) = self.session_state(&read)?;
                let Some(input) = scan_input(&state, shape.bounds, &table).await else {
                    // Planned as written, in the session made for it.
                    return planned_in(state, read).await;
                };
                let by_slice = self.partials.as_ref().map(|p| (&key.plan, p));
                let template = template(state, &registered[0], shape.skeleton, read.names.clone(), by_slice).await;
                self.templates.insert(key, template.clone());
                let outcome = if template.is_some() { "kept" } else { "not kept" };
                (template, Some(input), outcome)
            }
        };
        let (Some(kept), Some(input)) = (template, input) else {
            if outcome == "not kept" {
                metrics::counter!("flightdeck_local_plan_reuse_total", "outcome" => outcome).increment(1);
            }
            return self.planned(read).await;
        };
        // Each execution gets operators of its own; the kept ones stay unrun.
        let Ok(physical) = datafusion::physical_plan::execution_plan::reset_plan_states(Arc::clone(&kept.physical))
        else {
            return self.planned(read).await;
        };
        metrics::counter!("flightdeck_local_plan_reuse_total", "outcome" => outcome).increment(1);
        let (state, schema) = (Arc::clone(&kept.session), Arc::clone(&kept.schema));
        Ok(Planned { state, physical, schema, versions: read.versions, input: Some(input) })
    }
}

/// A task of `session` with `input` for the scan of a kept plan.
fn task_with(
    config: &SessionConfig,
    session: String,
    runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    input: crate::accel::ScanInput,
) -> Arc<datafusion::execution::TaskContext> {
    use std::collections::HashMap;
    let config = config.clone().with_extension(Arc::new(input));
    // Execution finds its functions in the plan; the registry a task
    // context carries serves only to read plans back.
    Arc::new(datafusion::execution::TaskContext::new(
        None,
        session,
        config,
        HashMap::new(),
        HashMap::new(),
        HashMap::new(),
        HashMap::new(),
        runtime,
    ))
}

/// The plan of a statement read, as written, in `state`.
async fn planned_in(state: SessionState, read: Read) -> Result<Planned, Refusal> {
    let Read { statement, names, versions, .. } = read;
    let (physical, schema) = plan_statement(&state, statement, names).await?;
    Ok(Planned { state: Arc::new(state), physical, schema, versions, input: None })
}

/// The plan of `skeleton` in `state` with its scan of `only` deferred, when
/// it is a plan a range can be given to: its one leaf is that scan. With
/// `by_slice`, its partial aggregates are kept per slice there.
async fn template(
    state: SessionState,
    only: &Registered,
    skeleton: ast::Query,
    names: Option<Vec<String>>,
    by_slice: Option<(&Arc<partials::PlanKey>, &Arc<partials::Partials>)>,
) -> Template {
    only.schema.deregister_table(&only.name).ok()?;
    only.schema.register_table(only.name.clone(), Arc::new(only.table.deferred())).ok()?;
    let statement = DfStatement::Statement(Box::new(ast::Statement::Query(Box::new(skeleton))));
    let planned = plan_statement(&state, statement, names).await;
    // The kept session plans the bounds of later statements, which read
    // the table's schema only: it keeps no rows alive.
    only.schema.deregister_table(&only.name).ok()?;
    only.schema.register_table(only.name.clone(), Arc::new(only.table.without_rows())).ok()?;
    let (physical, schema) = planned.ok()?;
    let mut leaves = Vec::new();
    let _ = physical.apply(|p| {
        if p.children().is_empty() {
            leaves.push(p.downcast_ref::<crate::accel::DeferredScan>().is_some());
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    });
    if leaves != [true] {
        return None;
    }
    let physical = match by_slice {
        // Kept as planned if it cannot be split.
        Some((key, partials)) => partials::by_slice(Arc::clone(&physical), key, partials).unwrap_or(physical),
        None => physical,
    };
    Some(Arc::new(Kept { physical, schema, session: Arc::new(state) }))
}

/// What the scan of `table` reads for `bounds` (`SELECT 1 FROM <table>
/// WHERE <bounds AND filters>`), planned as the statement's own conjuncts
/// are: the range of times its bounds cut, and the filter the rest run as;
/// `None` unless the bounds are all met by the scan as one range.
async fn scan_input(
    state: &SessionState,
    bounds: ast::Query,
    table: &crate::accel::DatasetTable,
) -> Option<crate::accel::ScanInput> {
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::common::{Column, DFSchema};
    use datafusion::logical_expr::utils::{conjunction, split_conjunction};

    let statement = DfStatement::Statement(Box::new(ast::Statement::Query(Box::new(bounds))));
    let (plan, _) = checked_plan(state, statement).await.ok()?;
    // Trino's comparisons, as the statement's own plan has them.
    let plan = rewrite::expressions(plan, state).ok()?;
    // Of the optimizer, what brings comparisons with constants to the scan:
    // types made to meet, constants folded, filters pushed down. Whatever
    // else the whole optimizer would do, `exact_range` takes only filters
    // that are each a bound the scan meets, and the filter left above the
    // scan runs as planned here.
    let plan = state.analyzer().execute_and_check(plan, state.config_options(), |_, _| {}).ok()?;
    let optimizer = datafusion::optimizer::Optimizer::with_rules(vec![
        Arc::new(datafusion::optimizer::simplify_expressions::SimplifyExpressions::new()),
        Arc::new(datafusion::optimizer::push_down_filter::PushDownFilter::new()),
    ]);
    let plan = optimizer.optimize(plan, state, |_, _| {}).ok()?;
    let mut scans = Vec::new();
    let mut filters = Vec::new();
    plan.apply(|p| {
        match p {
            LogicalPlan::TableScan(s) => scans.push(s.filters.clone()),
            // Only a filter right on the scan reads the table's columns.
            LogicalPlan::Filter(f) => filters.push(
                matches!(f.input.as_ref(), LogicalPlan::TableScan(_))
                    .then(|| split_conjunction(&f.predicate).into_iter().cloned().collect::<Vec<_>>()),
            ),
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .ok()?;
    let ([pushed], rest) = (scans.as_slice(), filters.as_slice()) else { return None };
    let rest = match rest {
        [] => Vec::new(),
        [Some(rest)] => rest.clone(),
        _ => return None,
    };
    // What is pushed to the scan and not run above it must be met exactly.
    let met: Vec<Expr> = pushed.iter().flat_map(split_conjunction).filter(|f| !rest.contains(f)).cloned().collect();
    let range = table.exact_range(&met)?;
    let (filter, filter_key) = match conjunction(rest) {
        Some(f) => {
            // Against the whole table, which the scan filters before it
            // projects: the only relation, so its names are enough.
            let f = f
                .transform(|e| match e {
                    Expr::Column(c) => Ok(Transformed::yes(Expr::Column(Column::new_unqualified(c.name)))),
                    e => Ok(Transformed::no(e)),
                })
                .ok()?
                .data;
            // Its whole structure, literals quoted and typed: two filters
            // with the same key are the same filter.
            let key = format!("{f:?}");
            let schema = DFSchema::try_from(datafusion::catalog::TableProvider::schema(table)).ok()?;
            (Some(state.create_physical_expr(f, &schema).ok()?), key)
        }
        None => (None, String::new()),
    };
    Some(crate::accel::ScanInput { table: table.clone(), range, filter, filter_key: filter_key.into(), only: None })
}

/// The logical plan of `statement` in `state`, with literals in their
/// columns' units, checked against the allowlist: the types of its
/// columns as Trino gives them. What a statement and the bounds and filters
/// taken out of it are both planned by.
async fn checked_plan(
    state: &SessionState,
    statement: DfStatement,
) -> Result<(LogicalPlan, Vec<crate::trino::TrinoType>), Refusal> {
    let plan = state.statement_to_plan(statement).await.map_err(|e| Refusal::new("plan", e.to_string()))?;
    let plan = timestamp_bounds(literal_units(plan)?)?;
    let types = check::plan(&plan)?;
    Ok((plan, types))
}

/// The physical plan of a statement read for `state`, and the answer's
/// schema as Trino gives it.
async fn plan_statement(
    state: &SessionState,
    statement: DfStatement,
    names: Option<Vec<String>>,
) -> Result<(Arc<dyn datafusion::physical_plan::ExecutionPlan>, SchemaRef), Refusal> {
    let (plan, types) = checked_plan(state, statement).await?;
    let rewritten = rewrite::expressions(plan, state)
        .and_then(|p| rewrite::double_extremes(p, state))
        .and_then(rewrite::exact_sums)
        .and_then(rewrite::newest_first)
        .and_then(rewrite::year_ranges)
        .and_then(rewrite::inline_string_groups);
    let plan = rewritten.map_err(|e| Refusal::new("plan", e.to_string()))?;
    let names = match names {
        Some(names) => names,
        // `SELECT *`: the columns' own names.
        None => plan.schema().fields().iter().map(|f| f.name().clone()).collect(),
    };
    if names.len() != types.len() {
        return Err(Refusal::new("plan", "the result's columns could not be named"));
    }
    let schema = Arc::new(Schema::new(names.iter().zip(&types).map(|(name, ty)| ty.field(name)).collect::<Vec<_>>()));
    let physical = state.create_physical_plan(&plan).await.map_err(|e| match e.find_root() {
        datafusion::error::DataFusionError::External(e) if e.is::<crate::accel::BeforeRetention>() => {
            Refusal::new("retention", e.to_string())
        }
        _ => Refusal::new("plan", e.to_string()),
    })?;
    Ok((physical, schema))
}

impl LocalEngine {
    /// The datasets `statement` reads, by the names it uses; refused when
    /// any is not a loaded dataset the user may read.
    async fn found(&self, session: &Session, statement: &DfStatement) -> Result<Found, Refusal> {
        let references =
            self.base.resolve_table_references(statement).map_err(|e| Refusal::new("syntax", e.to_string()))?;
        let (Some(catalog), Some(schema)) = (session.catalog.as_deref(), session.schema.as_deref()) else {
            if references.iter().any(|r| !matches!(r, datafusion::common::TableReference::Full { .. })) {
                return Err(Refusal::new(
                    "relation",
                    "a name not fully qualified, without a session catalog and schema",
                ));
            }
            return self.with_tables(session, &references, "", "").await;
        };
        self.with_tables(session, &references, catalog, schema).await
    }

    async fn with_tables(
        &self,
        session: &Session,
        references: &[datafusion::common::TableReference],
        catalog: &str,
        schema: &str,
    ) -> Result<Found, Refusal> {
        let mut tables = Vec::new();
        for r in references {
            let full = r.clone().resolve(catalog, schema);
            // Trino resolves names case-insensitively.
            let name = format!("{}.{}.{}", full.catalog, full.schema, full.table).to_lowercase();
            let Some(table) = self.datasets.table(&name) else {
                return Err(Refusal::new("relation", format!("{name} is not a loaded dataset")));
            };
            let schema = datafusion::catalog::TableProvider::schema(&table);
            if let Some(f) = schema.fields().iter().find(|f| f.metadata().contains_key(crate::accel::PARTIAL)) {
                let detail =
                    format!("{name}.{} holds zones or sub-nanosecond digits Arrow keeps only in part", f.name());
                return Err(Refusal::new("relation", detail));
            }
            tables.push((full, name, table));
        }
        // Asked of Trino all at once: a user's first query on four tables
        // waits for one answer, not four in a row.
        let allowed =
            futures::future::join_all(tables.iter().map(|(_, name, _)| self.datasets.may_read(&session.user, name)))
                .await;
        if let Some(((_, name, _), _)) = tables.iter().zip(&allowed).find(|(_, allowed)| !**allowed) {
            return Err(Refusal::new("access", format!("{name}: Trino decides for this user")));
        }
        Ok(Found { tables, catalog: catalog.to_string(), schema: schema.to_string() })
    }

    /// A session holding the datasets `read` found under the names it uses.
    fn session_state(&self, read: &Read) -> Result<(SessionState, Vec<Registered>), Refusal> {
        let catalogs = Arc::new(MemoryCatalogProviderList::new());
        let mut registered = Vec::new();
        for (full, _, table) in &read.found.tables {
            let c = match catalogs.catalog(&full.catalog) {
                Some(c) => c,
                None => {
                    let c: Arc<dyn CatalogProvider> = Arc::new(MemoryCatalogProvider::new());
                    catalogs.register_catalog(full.catalog.to_string(), Arc::clone(&c));
                    c
                }
            };
            let s = match c.schema(&full.schema) {
                Some(s) => s,
                None => {
                    let s = Arc::new(MemorySchemaProvider::new());
                    c.register_schema(&full.schema, Arc::clone(&s) as _)
                        .map_err(|e| Refusal::new("plan", e.to_string()))?;
                    s
                }
            };
            s.register_table(full.table.to_string(), Arc::new(table.clone()))
                .map_err(|e| Refusal::new("plan", e.to_string()))?;
            registered.push(Registered { schema: s, name: full.table.to_string(), table: table.clone() });
        }
        let mut config = self.base.config().clone().with_target_partitions(read.partitions);
        if !read.found.catalog.is_empty() {
            config = config.with_default_catalog_and_schema(&read.found.catalog, &read.found.schema);
        }
        // A copy of the base with this query's settings and tables: a
        // builder would register every function anew for each query.
        let mut state = self.base.clone();
        *state.config_mut() = config;
        state.register_catalog_list(catalogs);
        Ok((state, registered))
    }

    /// The plan made when `stmt` was described for `session`, if it still
    /// reads the current version of every dataset. Taken: a plan runs once.
    fn take_described(&self, session: &Session, stmt: &Statement) -> Option<Planned> {
        let entry = self.described.remove(&(session.clone(), stmt.text().to_string()))?;
        // The first run takes it; one of the same statement at the same
        // instant finds it gone and plans anew.
        let planned = entry.lock().ok()?.take()?;
        let current =
            planned.versions.iter().all(|(name, n)| self.datasets.version(name).is_some_and(|v| v.number == *n));
        current.then_some(planned)
    }

    /// Local queries running now.
    fn running(&self) -> usize {
        self.limits.concurrency.max(1) - self.slots.available_permits()
    }

    /// Plans and runs `stmt` to its end within the limits, or says why Trino
    /// must answer it.
    pub async fn run(&self, session: &Session, stmt: &Statement) -> Result<Answered, Refusal> {
        let Ok(_slot) = self.slots.try_acquire() else {
            return Err(Refusal::new("busy", "every local slot is taken"));
        };
        match tokio::time::timeout(self.limits.timeout, self.run_in_lane(session, stmt)).await {
            Ok(answer) => answer,
            Err(_) => Err(Refusal::new("time", format!("longer than {:?}", self.limits.timeout))),
        }
    }

    async fn run_in_lane(&self, session: &Session, stmt: &Statement) -> Result<Answered, Refusal> {
        // Read before waiting: a user's first query on a dataset asks Trino
        // whether they may read it, and must not hold a place meanwhile.
        let work = match self.take_described(session, stmt) {
            Some(planned) => Work::Planned(planned),
            None => Work::Read(self.read(session, stmt).await?),
        };
        // Sixteen queries sharing two cores each take eight times their own
        // time, so a long one ends far behind; a few at a time, each waits
        // for those before it and then runs at full speed. The same mean, a
        // shorter tail. The semaphore is fair: first come, first run.
        let waiting = std::time::Instant::now();
        let _lane = self.lanes.acquire().await.map_err(|e| Refusal::new("busy", e.to_string()))?;
        metrics::histogram!("flightdeck_local_wait_seconds").record(waiting.elapsed().as_secs_f64());
        let planned = match work {
            Work::Planned(planned) => planned,
            Work::Read(read) => self.planned_reusing(session, read).await?,
        };
        let task = match planned.input {
            Some(input) => task_with(
                planned.state.config(),
                planned.state.session_id().to_string(),
                Arc::clone(planned.state.runtime_env()),
                input,
            ),
            None => planned.state.task_ctx(),
        };
        let (schema, max_bytes) = (Arc::clone(&planned.schema), self.limits.max_result_bytes);
        let collect = async move {
            let mut stream = datafusion::physical_plan::execute_stream(planned.physical, task)
                .map_err(|e| Refusal::new("execution", e.to_string()))?;
            let mut batches = Vec::new();
            let mut bytes = 0;
            while let Some(b) = stream.next().await {
                let b = b.map_err(|e| match e.find_root() {
                    datafusion::error::DataFusionError::ResourcesExhausted(m) => Refusal::new("memory", m.clone()),
                    other => Refusal::new("execution", other.to_string()),
                })?;
                bytes += b.get_array_memory_size();
                if bytes > max_bytes {
                    return Err(Refusal::new("size", "the answer is larger than the local limit"));
                }
                batches.push(trino_batch(&b, &planned.schema)?);
            }
            Ok(batches)
        };
        // On the engine's own threads: the cores are shared with Flight's
        // by the OS, so a cache hit does not queue behind a running query.
        // Stopped when the time limit drops this future.
        let running = tokio_util::task::AbortOnDropHandle::new(self.cpu.spawn(collect));
        let batches = match running.await {
            Ok(answer) => answer?,
            Err(e) => return Err(Refusal::new("execution", e.to_string())),
        };
        Ok(Answered { schema, batches: batches.into() })
    }
}

#[async_trait::async_trait]
impl router::Local for LocalEngine {
    async fn start(&self, session: &Session, stmt: &Statement) -> Result<Box<dyn Execution>, Refusal> {
        self.run(session, stmt).await.map(|a| Box::new(a) as Box<dyn Execution>)
    }

    async fn explain(&self, session: &Session, stmt: &Statement) -> Result<String, Refusal> {
        let planned = self.plan(session, stmt).await?;
        Ok(datafusion::physical_plan::displayable(planned.physical.as_ref()).indent(true).to_string())
    }

    async fn describe(&self, session: &Session, stmt: &Statement) -> Result<SchemaRef, Refusal> {
        // Clients that prepare every statement (JDBC, ADBC's DB-API) reuse
        // kept plans as the others do.
        let planned = self.planned_reusing(session, self.read(session, stmt).await?).await?;
        let schema = Arc::clone(&planned.schema);
        self.described
            .insert((session.clone(), stmt.text().to_string()), Arc::new(std::sync::Mutex::new(Some(planned))));
        Ok(schema)
    }
}

/// Dataset names with version numbers.
type Versions = Vec<(String, u64)>;

/// A statement read for a session: its syntax, the names of its columns
/// as Trino gives them (`None` for `SELECT *`), and a session holding the
/// datasets it reads.
struct Read {
    statement: DfStatement,
    names: Option<Vec<String>>,
    found: Found,
    versions: Versions,
    /// The partitions to plan for.
    partitions: usize,
}

/// The datasets a statement reads, with the session's catalog and schema
/// (empty without them).
struct Found {
    tables: Vec<(datafusion::common::ResolvedTableReference, String, crate::accel::DatasetTable)>,
    catalog: String,
    schema: String,
}

/// A dataset registered in a query's session, by name in its schema.
struct Registered {
    schema: Arc<dyn datafusion::catalog::SchemaProvider>,
    name: String,
    table: crate::accel::DatasetTable,
}

/// A kept plan, `None` when the skeleton's plan cannot be reused.
type Template = Option<Arc<Kept>>;

/// The plan kept for a skeleton ([`reuse`]).
#[derive(Debug)]
struct Kept {
    physical: Arc<dyn datafusion::physical_plan::ExecutionPlan>,
    /// The answer's schema as Trino gives it.
    schema: SchemaRef,
    /// The session it was planned in, which plans the bounds of the
    /// statements that reuse it.
    session: Arc<SessionState>,
}

/// What a kept plan is found by: the user and session, the skeleton's
/// text and its partitions, and the dataset versions it reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TemplateKey {
    plan: Arc<partials::PlanKey>,
    versions: Versions,
}

/// What a local query has when it waits for its place.
enum Work {
    Planned(Planned),
    Read(Read),
}

/// A planned local statement.
#[derive(Debug)]
pub struct Planned {
    state: Arc<SessionState>,
    physical: Arc<dyn datafusion::physical_plan::ExecutionPlan>,
    /// The datasets it reads and the versions it reads of them.
    versions: Versions,
    /// The answer's schema as Trino gives it.
    pub schema: SchemaRef,
    /// What its execution reads, for a kept plan's scan.
    input: Option<crate::accel::ScanInput>,
}

/// A local answer, as an engine's execution.
#[derive(Debug)]
pub struct Answered {
    schema: SchemaRef,
    batches: std::collections::VecDeque<RecordBatch>,
}

#[async_trait::async_trait]
impl Execution for Answered {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn id(&self) -> &str {
        "local"
    }

    async fn next_batch(&mut self) -> router::Result<Option<RecordBatch>> {
        Ok(self.batches.pop_front())
    }

    fn changes(&self) -> Vec<router::Change> {
        Vec::new()
    }

    fn update_count(&self) -> Option<i64> {
        None
    }
}

/// `batch` with the Arrow types and names of `schema`. A value out of the
/// target's range fails (an overflow, which Trino reports), it is not made
/// NULL.
fn trino_batch(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, Refusal> {
    crate::accel::cast_to(batch, schema).map_err(|e| Refusal::new("overflow", e.to_string()))
}

/// The names Trino gives the columns of `query`: an alias as written, a
/// column's own name, else `_colN` by position. `None` for `SELECT *`.
fn output_names(query: &ast::Query) -> Result<Option<Vec<String>>, Refusal> {
    names_in(query, &[])
}

/// [`output_names`] of `query`, inside the named subqueries (`WITH`) of
/// the queries around it.
fn names_in<'q>(query: &'q ast::Query, outer: &[&'q ast::Cte]) -> Result<Option<Vec<String>>, Refusal> {
    let mut ctes = outer.to_vec();
    ctes.extend(query.with.iter().flat_map(|w| &w.cte_tables));
    let SetExpr::Select(select) = query.body.as_ref() else {
        return Err(Refusal::new("relation", "a set operation or VALUES"));
    };
    // Trino resolves GROUP BY and HAVING names among the relation's
    // columns only; DataFusion also takes the select list's aliases.
    let aliases: Vec<String> = select
        .projection
        .iter()
        .filter_map(|item| match item {
            SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.to_lowercase()),
            _ => None,
        })
        .collect();
    // But a name the select list also reads as a column is a column of the
    // relation, and in GROUP BY DataFusion too resolves it there (Superset
    // writes `fuel AS fuel ... GROUP BY fuel` and `date_trunc('hour', ts)
    // AS ts ... GROUP BY date_trunc('hour', ts)`). In HAVING DataFusion
    // takes the alias whatever the relation holds.
    let mut columns = std::collections::HashSet::new();
    for item in &select.projection {
        if let SelectItem::ExprWithAlias { expr, .. } | SelectItem::UnnamedExpr(expr) = item {
            let _ = ast::visit_expressions(expr, |e| {
                match e {
                    ast::Expr::Identifier(id) => columns.insert(id.value.to_lowercase()),
                    ast::Expr::CompoundIdentifier(parts) => {
                        parts.last().is_some_and(|p| columns.insert(p.value.to_lowercase()))
                    }
                    _ => false,
                };
                ControlFlow::<()>::Continue(())
            });
        }
    }
    let grouped: &[ast::Expr] = match &select.group_by {
        ast::GroupByExpr::Expressions(exprs, _) => exprs,
        ast::GroupByExpr::All(_) => &[],
    };
    let checks = select.having.iter().map(|e| (e, true)).chain(grouped.iter().map(|e| (e, false)));
    for (e, in_having) in checks {
        let named = ast::visit_expressions(e, |e| match e {
            ast::Expr::Identifier(id)
                if aliases.contains(&id.value.to_lowercase())
                    && (in_having || !columns.contains(&id.value.to_lowercase())) =>
            {
                ControlFlow::Break(())
            }
            _ => ControlFlow::Continue(()),
        });
        if named.is_break() {
            return Err(Refusal::new("syntax", "a select alias in GROUP BY or HAVING"));
        }
    }
    // In ORDER BY an output name hides a relation of the same name:
    // Trino reads `ORDER BY n.region` with an output `n` as a field of `n`.
    if let Some(ast::OrderBy { kind: ast::OrderByKind::Expressions(items), .. }) = &query.order_by {
        for item in items {
            let shadowed = ast::visit_expressions(&item.expr, |e| match e {
                ast::Expr::CompoundIdentifier(parts) if aliases.contains(&parts[0].value.to_lowercase()) => {
                    ControlFlow::Break(())
                }
                _ => ControlFlow::Continue(()),
            });
            if shadowed.is_break() {
                return Err(Refusal::new("syntax", "ORDER BY names a field of an output column"));
            }
        }
    }
    if let [SelectItem::Wildcard(_)] = select.projection.as_slice() {
        return star_names(select, &ctes);
    }
    select
        .projection
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            SelectItem::ExprWithAlias { alias, .. } => Ok(alias.value.clone()),
            SelectItem::UnnamedExpr(e) => Ok(column_name(e).unwrap_or_else(|| format!("_col{i}"))),
            _ => Err(Refusal::new("syntax", "`*` beside other columns")),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// The names of `SELECT *` over the relations of `select`: `None` (the
/// plan's, which are a table's columns) over tables; over one subquery,
/// its names, which Trino gives an unnamed column as `_colN` and DataFusion
/// as its expression's text.
fn star_names<'q>(select: &'q ast::Select, ctes: &[&'q ast::Cte]) -> Result<Option<Vec<String>>, Refusal> {
    use ast::TableFactor;
    let renamed = |alias: Option<&ast::TableAlias>| -> Option<Vec<String>> {
        alias.filter(|a| !a.columns.is_empty()).map(|a| a.columns.iter().map(|c| c.name.value.clone()).collect())
    };
    // The subquery a relation reads, if it is one, and the names its
    // alias (or the named subquery's) gives its columns.
    let subquery = |factor: &'q TableFactor| match factor {
        TableFactor::Derived { subquery, alias, .. } => Some((subquery.as_ref(), renamed(alias.as_ref()))),
        TableFactor::Table { name, alias, .. } => {
            let [ast::ObjectNamePart::Identifier(id)] = name.0.as_slice() else { return None };
            let cte = ctes.iter().rev().find(|c| c.alias.name.value.eq_ignore_ascii_case(&id.value))?;
            Some((cte.query.as_ref(), renamed(alias.as_ref()).or_else(|| renamed(Some(&cte.alias)))))
        }
        _ => None,
    };
    match select.from.as_slice() {
        [one] if one.joins.is_empty() => match (&one.relation, subquery(&one.relation)) {
            (_, Some((query, renamed))) => match renamed {
                Some(names) => Ok(Some(names)),
                None => names_in(query, ctes),
            },
            (TableFactor::Table { alias, .. }, None) => Ok(renamed(alias.as_ref())),
            _ => Err(Refusal::new("syntax", "`*` over a relation other than a table or subquery")),
        },
        from => {
            let mut relations =
                from.iter().flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)));
            // `USING` puts the shared columns first in Trino.
            if from.iter().flat_map(|t| &t.joins).any(|j| {
                matches!(
                    join_constraint(&j.join_operator),
                    Some(ast::JoinConstraint::Using(_) | ast::JoinConstraint::Natural)
                )
            }) {
                return Err(Refusal::new("syntax", "`*` over a join USING columns"));
            }
            let table = |r: &'q TableFactor| {
                matches!(r, TableFactor::Table { alias, .. } if renamed(alias.as_ref()).is_none())
                    && subquery(r).is_none()
            };
            match relations.all(table) {
                true => Ok(None),
                false => Err(Refusal::new("syntax", "`*` over a join with a subquery or renamed columns")),
            }
        }
    }
}

/// Refuses, in one walk of the statement, what the local engine would
/// read otherwise than Trino:
/// - what the local parser reads and Trino's grammar does not: `GROUP BY
///   ALL` (Trino reads `all` as a column), `* EXCLUDE (...)` and the like,
///   an interval with its unit inside the quotes (`INTERVAL '1 day'`),
///   `NATURAL JOIN`, `$$...$$`;
/// - literals Trino refuses: intervals of `1.5` days or of weeks, numbers
///   past `bigint` or 38 digits;
/// - `char(n)`: Trino pads its values to `n` and compares them without the
///   trailing spaces (`market = CAST('PJM  ' AS char(5))` holds for `PJM`);
///   DataFusion reads the type as a plain string;
/// - types `WITH TIME ZONE`, which DataFusion reads without a zone when the
///   session has none.
fn read_as_trino(query: &ast::Query) -> Result<(), Refusal> {
    use ast::{Visit, Visitor};
    fn grammar(what: &str) -> Refusal {
        Refusal::new("syntax", format!("{what} (Trino's grammar refuses it)"))
    }
    struct Reader;
    impl Visitor for Reader {
        type Break = Refusal;
        fn pre_visit_query(&mut self, query: &ast::Query) -> ControlFlow<Refusal> {
            set_grammar(&query.body).map_break(grammar)
        }
        fn pre_visit_expr(&mut self, e: &ast::Expr) -> ControlFlow<Refusal> {
            match e {
                ast::Expr::Interval(i) if i.leading_field.is_none() => {
                    ControlFlow::Break(grammar("an interval without a unit after the quotes"))
                }
                ast::Expr::Value(v) => match &v.value {
                    ast::Value::DollarQuotedString(_) => ControlFlow::Break(grammar("a dollar-quoted string")),
                    ast::Value::Number(n, _) if !trino_number(n) => {
                        ControlFlow::Break(Refusal::new("literal", format!("{n} (Trino: an invalid numeric literal)")))
                    }
                    _ => ControlFlow::Continue(()),
                },
                ast::Expr::Interval(i) if !trino_interval(i) => ControlFlow::Break(Refusal::new(
                    "literal",
                    "an interval other than a whole number of years, months, days, hours, minutes or seconds",
                )),
                ast::Expr::Cast { data_type: t, .. }
                | ast::Expr::TypedString(ast::TypedString { data_type: t, .. }) => {
                    type_refusal(t).map_or(ControlFlow::Continue(()), ControlFlow::Break)
                }
                _ => ControlFlow::Continue(()),
            }
        }
    }
    match query.visit(&mut Reader) {
        ControlFlow::Break(refusal) => Err(refusal),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// Why a cast to `t`, or a literal of it, is left to Trino, if it is.
fn type_refusal(t: &ast::DataType) -> Option<Refusal> {
    use ast::{DataType as T, TimezoneInfo as Z};
    match t {
        // Without a session zone DataFusion reads the type as one without.
        T::Timestamp(_, Z::WithTimeZone | Z::Tz) | T::Time(_, Z::WithTimeZone | Z::Tz) => {
            Some(Refusal::new("type", "a time or timestamp WITH TIME ZONE"))
        }
        T::Char(_) | T::Character(_) => {
            Some(Refusal::new("type", "a char(n) value (Trino pads it and compares it unpadded)"))
        }
        _ => None,
    }
}

/// Whether Trino reads the number literal `n`: an integer within bigint, a
/// decimal of at most 38 digits, or a double (an exponent).
fn trino_number(n: &str) -> bool {
    if n.contains(['e', 'E']) {
        return true;
    }
    match n.contains('.') {
        true => n.bytes().filter(u8::is_ascii_digit).count() <= 38,
        false => n.parse::<i64>().is_ok(),
    }
}

/// The condition of a join, for the operators that have one.
fn join_constraint(op: &ast::JoinOperator) -> Option<&ast::JoinConstraint> {
    use ast::JoinOperator as J;
    match op {
        J::Join(c)
        | J::Inner(c)
        | J::Left(c)
        | J::LeftOuter(c)
        | J::Right(c)
        | J::RightOuter(c)
        | J::FullOuter(c)
        | J::CrossJoin(c)
        | J::Semi(c)
        | J::LeftSemi(c)
        | J::RightSemi(c)
        | J::Anti(c)
        | J::LeftAnti(c)
        | J::RightAnti(c) => Some(c),
        J::AsOf { constraint, .. } => Some(constraint),
        _ => None,
    }
}

/// Whether `i` is an interval literal Trino reads as the local engine does:
/// `INTERVAL '7' DAY`: a whole number (Trino refuses `'1.5' DAY`; seconds
/// may have a fraction) of one of Trino's units (it has no `WEEK`, nor
/// plurals).
fn trino_interval(i: &ast::Interval) -> bool {
    use ast::DateTimeField as F;
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let number = |text: &str, fraction: bool| {
        let text = text.strip_prefix(['+', '-']).unwrap_or(text);
        match text.split_once('.') {
            Some((whole, part)) => fraction && digits(whole) && digits(part),
            None => digits(text),
        }
    };
    let unit = match &i.leading_field {
        Some(F::Year | F::Month | F::Day | F::Hour | F::Minute) => Some(false),
        Some(F::Second) => Some(true),
        _ => None,
    };
    let value = match (i.value.as_ref(), unit) {
        (ast::Expr::Value(v), Some(fraction)) => match &v.value {
            ast::Value::SingleQuotedString(text) => number(text, fraction),
            _ => false,
        },
        _ => false,
    };
    value && i.leading_precision.is_none() && i.last_field.is_none() && i.fractional_seconds_precision.is_none()
}

/// The grammar [`read_as_trino`] refuses in the selects of one query body
/// (nested queries are visited on their own).
fn set_grammar(body: &SetExpr) -> ControlFlow<&'static str> {
    match body {
        SetExpr::Select(select) => {
            if matches!(select.group_by, ast::GroupByExpr::All(_)) {
                return ControlFlow::Break("GROUP BY ALL");
            }
            let mut joins = select.from.iter().flat_map(|t| &t.joins);
            if joins.any(|j| matches!(join_constraint(&j.join_operator), Some(ast::JoinConstraint::Natural))) {
                return ControlFlow::Break("a NATURAL join");
            }
            for item in &select.projection {
                let (SelectItem::Wildcard(o) | SelectItem::QualifiedWildcard(_, o)) = item else { continue };
                if o.opt_ilike.is_some()
                    || o.opt_exclude.is_some()
                    || o.opt_except.is_some()
                    || o.opt_replace.is_some()
                    || o.opt_rename.is_some()
                {
                    return ControlFlow::Break("a `*` with EXCLUDE, EXCEPT, REPLACE, RENAME or ILIKE");
                }
            }
            ControlFlow::Continue(())
        }
        SetExpr::SetOperation { left, right, .. } => {
            set_grammar(left)?;
            set_grammar(right)
        }
        _ => ControlFlow::Continue(()),
    }
}

/// Number literals with an exponent (`1e3`, `2.5E-3`) as doubles, which
/// they are in Trino; DataFusion, reading `1.5` as a decimal as Trino does,
/// would read them as decimals too. Each becomes a cast of its text to
/// double: both engines parse it to the nearest double.
fn exponent_doubles(query: &mut ast::Query) {
    let _ = ast::visit_expressions_mut(query, |e| {
        if let ast::Expr::Value(v) = e
            && let ast::Value::Number(n, _) = &v.value
            && n.contains(['e', 'E'])
        {
            *e = ast::Expr::Cast {
                kind: ast::CastKind::Cast,
                expr: Box::new(ast::Expr::Value(ast::Value::SingleQuotedString(n.clone()).into())),
                data_type: ast::DataType::Double(ast::ExactNumberInfo::None),
                array: false,
                format: None,
            };
        }
        ControlFlow::<()>::Continue(())
    });
}

/// `CAST(x AS TIMESTAMP)` as Trino reads it: `timestamp(3)`, where
/// DataFusion would read nanoseconds (Superset casts its time column so).
fn timestamps_in_milliseconds(query: &mut ast::Query) {
    let _ = ast::visit_expressions_mut(query, |e| {
        if let ast::Expr::Cast { data_type, .. } = e
            && let ast::DataType::Timestamp(precision @ None, ast::TimezoneInfo::None) = data_type
        {
            *precision = Some(3);
        }
        ControlFlow::<()>::Continue(())
    });
}

/// Whether `text` is a number literal with an exponent: digits with at
/// most one `.` among them, then `e` or `E`, a sign and digits.
fn is_exponent_number(text: &str) -> bool {
    let Some((mantissa, exponent)) = text.split_once(['e', 'E']) else { return false };
    let digits = mantissa.replacen('.', "", 1);
    let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !exponent.is_empty()
        && exponent.bytes().all(|b| b.is_ascii_digit())
}

/// The name Trino gives an unaliased select item that names a column: as
/// written, parentheses aside.
fn column_name(e: &ast::Expr) -> Option<String> {
    match e {
        ast::Expr::Identifier(id) => Some(id.value.clone()),
        ast::Expr::CompoundIdentifier(parts) => parts.last().map(|p| p.value.clone()),
        ast::Expr::Nested(inner) => column_name(inner),
        _ => None,
    }
}

/// Timestamp literals at the coarsest unit that holds them exactly.
/// DataFusion types every `TIMESTAMP '...'` in nanoseconds, and comparing
/// one with a millisecond column would cast the column to nanoseconds,
/// which cannot hold dates before 1677 or after 2262; Trino's literal has
/// the precision its digits give it.
///
/// A literal plus or minus an interval literal (`TIMESTAMP '...' + INTERVAL
/// '7' DAY`, as dashboards write time ranges) is folded into one literal,
/// with Trino's calendar arithmetic: months added to the 31st land on the
/// month's last day.
fn literal_units(plan: LogicalPlan) -> Result<LogicalPlan, Refusal> {
    use arrow::datatypes::{DataType, TimeUnit};
    let rewrite = |e: Expr| -> datafusion::common::Result<Transformed<Expr>> {
        if let Expr::BinaryExpr(datafusion::logical_expr::BinaryExpr { left, op, right }) = &e
            && let (Expr::Literal(a, _), Expr::Literal(b, _)) = (left.as_ref(), right.as_ref())
        {
            use datafusion::logical_expr::Operator::{Minus, Plus};
            let folded = match op {
                Plus => shifted(a, b, 1).or_else(|| shifted(b, a, 1)),
                Minus => shifted(a, b, -1),
                _ => None,
            };
            return Ok(match folded {
                Some(v) => Transformed::yes(Expr::Literal(v, None)),
                None => Transformed::no(e),
            });
        }
        // The exponent literals of [`exponent_doubles`]: Rust and Java both
        // parse this syntax to the nearest double. Other text (`NaN`,
        // `0x1p3`, `1d`) is left to the cast, which the allowlist refuses.
        if let Expr::Cast(Cast { expr, field }) = &e
            && field.data_type() == &DataType::Float64
            && let Expr::Literal(ScalarValue::Utf8(Some(text)), _) = expr.as_ref()
            && is_exponent_number(text)
            && let Ok(v) = text.parse::<f64>()
            && v.is_finite()
        {
            return Ok(Transformed::yes(Expr::Literal(ScalarValue::Float64(Some(v)), None)));
        }
        if let Expr::Cast(Cast { expr, field }) = &e
            && field.data_type() == &DataType::Date32
            && let Expr::Literal(ScalarValue::Utf8(Some(text)), _) = expr.as_ref()
        {
            // Arrow also reads `2024-02-29 12:34:56` and `20240229`, and
            // makes `2024-02-30` NULL; Trino refuses each.
            let date = arrow::compute::cast(&arrow::array::StringArray::from(vec![text.as_str()]), &DataType::Date32)?;
            let date = ScalarValue::try_from_array(&date, 0)?;
            if text.len() != 10 || !check::plain_timestamp(text, 0) || date.is_null() {
                return Err(datafusion::error::DataFusionError::Plan(format!(
                    "a date literal spelled other than a YYYY-MM-DD day of the calendar: '{text}'"
                )));
            }
            return Ok(Transformed::yes(Expr::Literal(date, None)));
        }
        let Expr::Cast(Cast { expr, field }) = &e else { return Ok(Transformed::no(e)) };
        let (DataType::Timestamp(TimeUnit::Nanosecond, tz), Expr::Literal(ScalarValue::Utf8(Some(text)), _)) =
            (field.data_type(), expr.as_ref())
        else {
            return Ok(Transformed::no(e));
        };
        let fraction = text.split('.').nth(1).map_or(0, |f| f.chars().take_while(char::is_ascii_digit).count());
        if fraction > 6 {
            return Err(datafusion::error::DataFusionError::Plan("a timestamp literal finer than microseconds".into()));
        }
        // Arrow also reads `2024-01-02T00:00:00`, which Trino refuses, and
        // zones Trino spells otherwise.
        if !check::plain_timestamp(text, 6) {
            return Err(datafusion::error::DataFusionError::Plan(format!(
                "a timestamp literal spelled other than YYYY-MM-DD[ HH:MM:SS[.ffffff]]: '{text}'"
            )));
        }
        let micros = arrow::compute::cast(
            &arrow::array::StringArray::from(vec![text.as_str()]),
            &DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
        )?;
        let micros = ScalarValue::try_from_array(&micros, 0)?;
        let ScalarValue::TimestampMicrosecond(Some(us), tz) = micros else { return Ok(Transformed::no(e)) };
        let value = match us {
            us if us % 1_000_000 == 0 => ScalarValue::TimestampSecond(Some(us / 1_000_000), tz),
            us if us % 1_000 == 0 => ScalarValue::TimestampMillisecond(Some(us / 1_000), tz),
            us => ScalarValue::TimestampMicrosecond(Some(us), tz),
        };
        Ok(Transformed::yes(Expr::Literal(value, None)))
    };
    plan.transform_up_with_subqueries(|node| node.map_expressions(|e| e.transform_up(rewrite)))
        .map(|t| t.data)
        .map_err(|e| Refusal::new("literal", e.to_string()))
}

/// Literals compared with a coarser timestamp, rounded to its unit where
/// that keeps the comparison's answer.
///
/// Trino compares `ts >= TIMESTAMP '2024-01-01 00:00:00.0004'` on a
/// `timestamp(3)` column at the literal's precision. DataFusion casts the
/// column to the literal's unit, and its simplifier then casts the literal
/// back to the column's unit, truncating it: `ts >= ...00.000` would keep
/// the rows at `.000`. Rounded first (up for `>=` and `<`, down for `>` and
/// `<=`), the literal casts exactly. An equality with a literal between two
/// of the column's values is refused.
fn timestamp_bounds(plan: LogicalPlan) -> Result<LogicalPlan, Refusal> {
    plan.transform_up_with_subqueries(|node| {
        // The schema the node's expressions read: its input's, or both
        // sides' for a join.
        let schema = match node.inputs().as_slice() {
            [input] => Arc::clone(input.schema()),
            [] => Arc::clone(node.schema()),
            inputs => {
                let mut merged = datafusion::common::DFSchema::empty();
                inputs.iter().for_each(|i| merged.merge(i.schema()));
                Arc::new(merged)
            }
        };
        node.map_expressions(|e| e.transform_up(|e| rounded_bounds(e, &schema)))
    })
    .map(|t| t.data)
    .map_err(|e| Refusal::new("literal", e.to_string()))
}

/// `e` with the timestamp literals it compares with a coarser timestamp
/// rounded ([`timestamp_bounds`]).
fn rounded_bounds(e: Expr, schema: &datafusion::common::DFSchema) -> datafusion::common::Result<Transformed<Expr>> {
    use datafusion::logical_expr::{Between, BinaryExpr, Operator, expr::InList};
    Ok(match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            if let Some(r) = rounded(&left, op, &right, schema)? {
                Transformed::yes(Expr::BinaryExpr(BinaryExpr { left, op, right: r }))
            } else if let Some(swapped) = op.swap()
                && let Some(l) = rounded(&right, swapped, &left, schema)?
            {
                Transformed::yes(Expr::BinaryExpr(BinaryExpr { left: l, op, right }))
            } else {
                Transformed::no(Expr::BinaryExpr(BinaryExpr { left, op, right }))
            }
        }
        // `NOT BETWEEN` is `x < low OR x > high`: the same roundings.
        Expr::Between(Between { expr, negated, low, high }) => {
            let (l, h) =
                (rounded(&expr, Operator::GtEq, &low, schema)?, rounded(&expr, Operator::LtEq, &high, schema)?);
            let changed = l.is_some() || h.is_some();
            let e = Expr::Between(Between { low: l.unwrap_or(low), high: h.unwrap_or(high), expr, negated });
            if changed { Transformed::yes(e) } else { Transformed::no(e) }
        }
        Expr::InList(InList { expr, list, negated }) => {
            for item in &list {
                rounded(&expr, Operator::Eq, item, schema)?;
            }
            Transformed::no(Expr::InList(InList { expr, list, negated }))
        }
        e => Transformed::no(e),
    })
}

/// `literal` rounded so that `x op literal` keeps its answer once the
/// literal is cast to `x`'s unit; `None` when it casts exactly already (or
/// is not a timestamp compared with a coarser one), an error for an
/// equality it cannot meet.
fn rounded(
    x: &Expr,
    op: datafusion::logical_expr::Operator,
    literal: &Expr,
    schema: &datafusion::common::DFSchema,
) -> datafusion::common::Result<Option<Box<Expr>>> {
    use arrow::datatypes::{DataType, TimeUnit};
    use datafusion::logical_expr::{ExprSchemable, Operator};
    let per_second = |u: &TimeUnit| match u {
        TimeUnit::Second => 1i64,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    };
    // Which way a bound rounds; `None` for an equality, which cannot.
    let up = match op {
        Operator::GtEq | Operator::Lt => Some(true),
        Operator::Gt | Operator::LtEq => Some(false),
        Operator::Eq | Operator::NotEq | Operator::IsDistinctFrom | Operator::IsNotDistinctFrom => None,
        _ => return Ok(None),
    };
    let (v, unit, tz) = match literal {
        Expr::Literal(ScalarValue::TimestampSecond(Some(v), tz), _) => (*v, TimeUnit::Second, tz),
        Expr::Literal(ScalarValue::TimestampMillisecond(Some(v), tz), _) => (*v, TimeUnit::Millisecond, tz),
        Expr::Literal(ScalarValue::TimestampMicrosecond(Some(v), tz), _) => (*v, TimeUnit::Microsecond, tz),
        Expr::Literal(ScalarValue::TimestampNanosecond(Some(v), tz), _) => (*v, TimeUnit::Nanosecond, tz),
        _ => return Ok(None),
    };
    // The coarsest unit on `x`'s side: under a cast to a finer timestamp,
    // the simplifier casts the literal down to the column's unit.
    let (mut coarsest, mut at) = (None::<i64>, x);
    loop {
        match at.get_type(schema) {
            Ok(DataType::Timestamp(u, _)) => {
                coarsest = Some(coarsest.map_or(per_second(&u), |c| c.min(per_second(&u))))
            }
            _ => break,
        }
        match at {
            Expr::Cast(c) => at = &c.expr,
            Expr::TryCast(c) => at = &c.expr,
            _ => break,
        }
    }
    let Some(coarsest) = coarsest else { return Ok(None) };
    let factor = per_second(&unit) / coarsest;
    if factor <= 1 || v.rem_euclid(factor) == 0 {
        return Ok(None);
    }
    let floor = v.div_euclid(factor) * factor;
    let value = match up {
        Some(true) => floor.checked_add(factor),
        Some(false) => Some(floor),
        None => {
            return datafusion::common::plan_err!(
                "an equality of a timestamp with a literal finer than it (Trino compares at the literal's precision)"
            );
        }
    };
    let Some(value) = value else {
        return datafusion::common::plan_err!("a timestamp literal at the end of the range");
    };
    let tz = tz.clone();
    let value = match unit {
        TimeUnit::Second => ScalarValue::TimestampSecond(Some(value), tz),
        TimeUnit::Millisecond => ScalarValue::TimestampMillisecond(Some(value), tz),
        TimeUnit::Microsecond => ScalarValue::TimestampMicrosecond(Some(value), tz),
        TimeUnit::Nanosecond => ScalarValue::TimestampNanosecond(Some(value), tz),
    };
    Ok(Some(Box::new(Expr::Literal(value, None))))
}

/// `value` (a date or a timestamp without zone) moved by `sign` times
/// `interval`, in the coarsest unit that holds the result; `None` when
/// either is something else or the result is out of range.
fn shifted(value: &ScalarValue, interval: &ScalarValue, sign: i32) -> Option<ScalarValue> {
    use chrono::{DateTime, Months, NaiveDate, NaiveDateTime, TimeDelta};
    let (months, days, nanos) = match interval {
        ScalarValue::IntervalMonthDayNano(Some(i)) => (i.months, i.days, i.nanoseconds),
        ScalarValue::IntervalYearMonth(Some(m)) => (*m, 0, 0),
        ScalarValue::IntervalDayTime(Some(d)) => (0, d.days, i64::from(d.milliseconds) * 1_000_000),
        _ => return None,
    };
    let step = |t: NaiveDateTime| -> Option<NaiveDateTime> {
        let m = Months::new(months.unsigned_abs());
        let t = if (months >= 0) == (sign > 0) { t.checked_add_months(m)? } else { t.checked_sub_months(m)? };
        let delta = TimeDelta::days(i64::from(days)) + TimeDelta::nanoseconds(nanos);
        if sign > 0 { t.checked_add_signed(delta) } else { t.checked_sub_signed(delta) }
    };
    match value {
        ScalarValue::Date32(Some(d)) if nanos == 0 => {
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
            let date = epoch.checked_add_signed(TimeDelta::days(i64::from(*d)))?;
            let moved = step(date.and_hms_opt(0, 0, 0)?)?.date();
            Some(ScalarValue::Date32(Some(i32::try_from((moved - epoch).num_days()).ok()?)))
        }
        ScalarValue::TimestampSecond(Some(v), None)
        | ScalarValue::TimestampMillisecond(Some(v), None)
        | ScalarValue::TimestampMicrosecond(Some(v), None) => {
            let micros = match value {
                ScalarValue::TimestampSecond(..) => v.checked_mul(1_000_000)?,
                ScalarValue::TimestampMillisecond(..) => v.checked_mul(1_000)?,
                _ => *v,
            };
            let moved = step(DateTime::from_timestamp_micros(micros)?.naive_utc())?;
            if moved.and_utc().timestamp_subsec_nanos() % 1_000 != 0 {
                return None;
            }
            Some(match moved.and_utc().timestamp_micros() {
                us if us % 1_000_000 == 0 => ScalarValue::TimestampSecond(Some(us / 1_000_000), None),
                us if us % 1_000 == 0 => ScalarValue::TimestampMillisecond(Some(us / 1_000), None),
                us => ScalarValue::TimestampMicrosecond(Some(us), None),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::{DataType, Field, TimeUnit};
    use datafusion::common::{DFSchema, ScalarValue};
    use datafusion::logical_expr::{Expr, Operator, cast, col, lit};

    use super::rounded;

    fn micros(v: i64) -> Expr {
        lit(ScalarValue::TimestampMicrosecond(Some(v), None))
    }

    /// The microsecond value `literal` becomes when compared by `op` with a
    /// column of seconds; `None` when it is left as it is.
    fn rounded_micros(x: &Expr, op: Operator, literal: i64) -> datafusion::common::Result<Option<i64>> {
        let schema = DFSchema::try_from(arrow::datatypes::Schema::new(vec![Field::new(
            "s",
            DataType::Timestamp(TimeUnit::Second, None),
            true,
        )]))
        .unwrap();
        Ok(rounded(x, op, &micros(literal), &schema)?.map(|e| match *e {
            Expr::Literal(ScalarValue::TimestampMicrosecond(Some(v), None), _) => v,
            other => panic!("{other}"),
        }))
    }

    /// The statement `sql` as the local parser reads it.
    fn query(sql: &str) -> Box<sqlparser::ast::Query> {
        let parsed = sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::GenericDialect {}, sql).unwrap();
        match parsed.into_iter().next() {
            Some(sqlparser::ast::Statement::Query(q)) => q,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_star_over_a_subquery_takes_trinos_names_for_its_unnamed_columns() {
        let names = |sql: &str| super::output_names(&query(sql)).map_err(|r| r.to_string());
        let some = |n: &[&str]| Ok(Some(n.iter().map(|s| s.to_string()).collect::<Vec<_>>()));
        assert_eq!(names("SELECT * FROM t"), Ok(None), "a table's own columns");
        assert_eq!(names("SELECT * FROM (SELECT count(*) FROM t)"), some(&["_col0"]));
        assert_eq!(names("SELECT * FROM (SELECT a, a + 1, b AS c FROM t) x ORDER BY 1"), some(&["a", "_col1", "c"]));
        assert_eq!(names("SELECT * FROM (SELECT * FROM (SELECT max(a) FROM t))"), some(&["_col0"]));
        assert_eq!(names("WITH w AS (SELECT m, count(*) FROM t GROUP BY m) SELECT * FROM w"), some(&["m", "_col1"]));
        // A named subquery seen from a subquery inside the statement.
        assert_eq!(names("WITH w AS (SELECT min(a) FROM t) SELECT * FROM (SELECT * FROM W)"), some(&["_col0"]));
        assert_eq!(names("WITH w(x, y) AS (SELECT a, sum(b) FROM t GROUP BY a) SELECT * FROM w"), some(&["x", "y"]));
        assert_eq!(
            names("WITH w(x, y) AS (SELECT a, sum(b) FROM t GROUP BY a) SELECT * FROM w AS v"),
            some(&["x", "y"])
        );
        assert_eq!(names("SELECT * FROM (SELECT a, sum(b) FROM t GROUP BY a) AS s(k, v)"), some(&["k", "v"]));
        assert_eq!(names("SELECT * FROM t AS s(k, v)"), some(&["k", "v"]));
        assert_eq!(names("SELECT * FROM t JOIN u ON t.a = u.a"), Ok(None));
        assert!(names("SELECT * FROM t JOIN (SELECT count(*) FROM u) c ON true").is_err());
        // Trino puts the columns of USING first.
        assert!(names("SELECT * FROM t JOIN u USING (a)").is_err());
        assert_eq!(names("SELECT t.a, u.b FROM t JOIN u USING (a)"), some(&["a", "b"]));
    }

    #[test]
    fn what_trino_refuses_to_read_is_left_to_it() {
        let read = |sql: &str| super::read_as_trino(&query(sql)).is_ok();
        assert!(!read("SELECT * FROM t NATURAL JOIN u"));
        assert!(!read("SELECT a FROM t WHERE b = $$x$$"));
        assert!(!read("SELECT a FROM t WHERE b < 9223372036854775808"));
        assert!(!read("SELECT a FROM t WHERE b < 1234567890123456789012345678901234567.89"));
        assert!(read("SELECT a FROM t WHERE b < 9223372036854775807 AND c > 12345678901234567890123456789012345.678"));
        assert!(read("SELECT a FROM t WHERE b < 1e400 AND c = '$$'"));
    }

    #[test]
    fn intervals_are_read_locally_only_as_trino_spells_them() {
        let read = |sql: &str| super::read_as_trino(&query(sql)).is_ok();
        for ok in ["INTERVAL '7' DAY", "INTERVAL '-3' MONTH", "INTERVAL '+1' YEAR", "INTERVAL '0.250' SECOND"] {
            assert!(read(&format!("SELECT ts + {ok} FROM t")), "{ok}");
        }
        for no in [
            "INTERVAL '1.5' DAY",
            "INTERVAL '1.5' MONTH",
            "INTERVAL '1' WEEK",
            "INTERVAL '2' DAYS",
            "INTERVAL '1-2' YEAR TO MONTH",
            "INTERVAL 1 DAY",
            "INTERVAL ' 1' DAY",
            "INTERVAL '.5' SECOND",
            "INTERVAL '' DAY",
        ] {
            assert!(!read(&format!("SELECT ts + {no} FROM t")), "{no}");
        }
    }

    #[test]
    fn a_finer_timestamp_literal_is_rounded_so_each_comparison_keeps_its_answer() {
        let s = col("s");
        // 1.5 s: `s >= 1.5` and `s < 1.5` hold from 2 s on, `s > 1.5` and
        // `s <= 1.5` up to 1 s.
        for (op, want) in [
            (Operator::GtEq, 2_000_000),
            (Operator::Lt, 2_000_000),
            (Operator::Gt, 1_000_000),
            (Operator::LtEq, 1_000_000),
        ] {
            assert_eq!(rounded_micros(&s, op, 1_500_000).unwrap(), Some(want), "{op}");
        }
        // Before the epoch, down is away from zero: -0.5 s lies between -1 and 0.
        assert_eq!(rounded_micros(&s, Operator::Gt, -500_000).unwrap(), Some(-1_000_000));
        assert_eq!(rounded_micros(&s, Operator::GtEq, -500_000).unwrap(), Some(0));
        assert_eq!(rounded_micros(&s, Operator::LtEq, -1_500_000).unwrap(), Some(-2_000_000));
        // A whole second is left alone, as is a comparison that is no bound.
        assert_eq!(rounded_micros(&s, Operator::GtEq, -3_000_000).unwrap(), None);
        assert_eq!(rounded_micros(&s, Operator::Eq, 3_000_000).unwrap(), None);
        assert_eq!(rounded_micros(&s, Operator::Minus, 1_500_000).unwrap(), None);
        // No second equals 1.5 s.
        for op in [Operator::Eq, Operator::NotEq, Operator::IsDistinctFrom, Operator::IsNotDistinctFrom] {
            let e = rounded_micros(&s, op, 1_500_000).unwrap_err();
            assert!(e.to_string().contains("finer than it"), "{op}: {e}");
        }
        // Under a cast to microseconds the simplifier would still cast the
        // literal down to seconds: the column's own unit counts.
        let widened = cast(col("s"), DataType::Timestamp(TimeUnit::Microsecond, None));
        assert_eq!(rounded_micros(&widened, Operator::GtEq, 1_500_000).unwrap(), Some(2_000_000));
        // At the end of the range there is no second to round up to.
        assert!(rounded_micros(&s, Operator::GtEq, i64::MAX).is_err());
        assert_eq!(rounded_micros(&s, Operator::LtEq, i64::MAX).unwrap(), Some(i64::MAX - i64::MAX % 1_000_000));
    }
}
