//! One version of a dataset as a DataFusion table.
//!
//! The provider holds the version it was made from, so a query reads one
//! version from start to end whatever refreshes do meanwhile. Filters are
//! checked against each slice's statistics and the slices they rule out are
//! not scanned; the filters themselves still run on what is read. Rows of a
//! dataset with a time column are declared sorted by it, so sorts and
//! ordered aggregates on it need no sort.

use std::sync::Arc;

use arrow::compute::SortOptions;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DFSchema, Result};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
use datafusion::physical_optimizer::pruning::PruningPredicateBuilder;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::expressions::col;

use super::Version;
use super::slice::{Slice, Statistics};

/// A dataset version, scanned by DataFusion.
#[derive(Debug)]
pub struct DatasetTable {
    version: Arc<Version>,
    /// The column the rows are sorted by (ascending, nulls first).
    sorted_by: Option<String>,
}

impl DatasetTable {
    pub fn new(version: Arc<Version>, sorted_by: Option<String>) -> Self {
        DatasetTable { version, sorted_by }
    }

    /// The slices `filters` do not rule out.
    pub fn candidates(&self, state: &dyn Session, filters: &[Expr]) -> Result<Vec<&Slice>> {
        let slices = &self.version.slices;
        let Some(filter) = conjunction(filters.iter().cloned()) else {
            return Ok(slices.iter().collect());
        };
        let schema = &self.version.schema;
        let df_schema = DFSchema::try_from(Arc::clone(schema))?;
        let predicate = state.create_physical_expr(filter, &df_schema)?;
        // `None`: the filters say nothing the statistics can use.
        let Some(pruning) = PruningPredicateBuilder::new().with_file_schema(Arc::clone(schema)).build(predicate) else {
            return Ok(slices.iter().collect());
        };
        let keep = pruning.prune(&Statistics { schema, slices })?;
        Ok(slices.iter().zip(keep).filter(|(_, keep)| *keep).map(|(s, _)| s).collect())
    }
}

#[async_trait]
impl TableProvider for DatasetTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.version.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        // Used to skip slices; each filter still runs on the rows read.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let slices = self.candidates(state, filters)?;
        // Contiguous runs, one per partition, so each stays sorted.
        let partitions = state.config().target_partitions().max(1);
        let per = slices.len().div_ceil(partitions).max(1);
        let runs: Vec<Vec<_>> = slices.chunks(per).map(|run| run.iter().map(|s| s.batch.clone()).collect()).collect();
        let runs = if runs.is_empty() { vec![Vec::new()] } else { runs };
        let schema = Arc::clone(&self.version.schema);
        let mut source =
            MemorySourceConfig::try_new(&runs, Arc::clone(&schema), projection.cloned())?.with_limit(limit);
        if let Some(column) = &self.sorted_by {
            // Nulls are held first. Without any, the rows are as much in
            // `NULLS LAST` order, the one Trino's ascending sorts ask for
            // (DataFusion keeps one of two such orderings).
            let index = schema.index_of(column)?;
            let nulls_first = self.version.slices.iter().any(|s| s.stats.nulls[index] > 0);
            let order = PhysicalSortExpr::new(col(column, &schema)?, SortOptions { descending: false, nulls_first });
            source = source.try_with_sort_information(LexOrdering::new([order]).into_iter().collect())?;
        }
        Ok(DataSourceExec::from_data_source(source))
    }
}
