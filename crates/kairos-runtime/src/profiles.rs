//! Profiles read from tables in the database ([`ProfileStore`]), within the start-session
//! budget the runtime applies.

use std::collections::HashMap;

use kairos_engine::Deployment;
use kairos_engine::world::{AudienceId, Profile, assemble_profile, matches_audience};
use kairos_model::TableSchema;
use kairos_store::{BoxFuture, ProfileStore, StoreError};

use crate::runtime::ProfileSource;

pub struct StoreProfiles {
    store: ProfileStore,
    /// Table schemas by lowercase name, read once (a re-import is picked up on reload).
    schemas: HashMap<String, TableSchema>,
}

impl StoreProfiles {
    pub async fn open(store: ProfileStore) -> Result<StoreProfiles, StoreError> {
        let schemas = store
            .schemas()
            .await?
            .into_iter()
            .map(|s| (s.name.to_ascii_lowercase(), s))
            .collect();
        Ok(StoreProfiles { store, schemas })
    }

    /// The imported tables' schemas, for type checking channels against them.
    pub fn schemas(&self) -> kairos_model::Schemas {
        let mut schemas = kairos_model::Schemas::new();
        for s in self.schemas.values() {
            schemas.insert(s.clone());
        }
        schemas
    }

    async fn load_async(
        &self,
        dep: &Deployment,
        audience: &AudienceId,
    ) -> Result<Option<Profile>, StoreError> {
        let Some(query) = dep.profile_query(audience) else {
            return Ok(None);
        };
        let Some(schema) = self.schemas.get(&query.table.to_ascii_lowercase()) else {
            return Ok(None);
        };
        let rows = self.store.rows(schema, query.id_field, &query.id).await?;
        let Some(row) = rows.into_iter().find(|row| matches_audience(row, audience)) else {
            return Ok(None);
        };
        let mut dimensions = Vec::with_capacity(query.dimensions.len());
        for d in &query.dimensions {
            let rows = match self.schemas.get(&d.table.to_ascii_lowercase()) {
                Some(schema) => self.store.rows(schema, d.key, &query.id).await?,
                None => Vec::new(),
            };
            dimensions.push((d.name.to_string(), rows));
        }
        Ok(Some(assemble_profile(row, dimensions)))
    }
}

impl ProfileSource for StoreProfiles {
    fn load<'a>(
        &'a self,
        dep: &'a Deployment,
        audience: &'a AudienceId,
    ) -> BoxFuture<'a, Result<Option<Profile>, String>> {
        Box::pin(async move {
            self.load_async(dep, audience)
                .await
                .map_err(|e| e.to_string())
        })
    }
}
