//! The functions a module provides, by name.

use crate::activity::{ActFuture, ActivityContext};
use crate::error::{Error, Result};
use crate::orchestration::{from_json, OrchFuture, OrchestrationContext};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::future::Future;
use std::rc::Rc;

pub(crate) type OrchFn = Rc<dyn Fn(OrchestrationContext, &[u8]) -> OrchFuture>;
pub(crate) type ActFn = Rc<dyn Fn(ActivityContext, &[u8]) -> ActFuture>;

/// The orchestrators and activities of a module. Fill it in the function
/// passed to [`export!`](crate::export) (or to [`crate::testing::Env`]).
#[derive(Default, Clone)]
pub struct Registry {
    pub(crate) orchestrators: HashMap<String, OrchFn>,
    pub(crate) activities: HashMap<String, ActFn>,
    /// (kind, name) in registration order.
    pub(crate) order: Vec<(i32, String)>,
}

fn encode<O: Serialize>(o: &O) -> Result<Vec<u8>> {
    serde_json::to_vec(o).map_err(|e| Error::json("encode output", e))
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Registers orchestrator `name`: an async fn taking the context and the
    /// decoded input (use `Option<T>` when the input may be absent) and
    /// returning the output to encode as JSON.
    pub fn orchestrator<F, I, O, Fut>(&mut self, name: &str, f: F) -> &mut Registry
    where
        F: Fn(OrchestrationContext, I) -> Fut + 'static,
        I: DeserializeOwned,
        O: Serialize,
        Fut: Future<Output = Result<O>> + 'static,
    {
        let f: OrchFn = Rc::new(move |ctx, input| {
            let fut = from_json::<I>(input).map(|i| f(ctx, i));
            Box::pin(async move {
                let o = fut?.await?;
                encode(&o)
            })
        });
        if self.orchestrators.insert(name.to_string(), f).is_none() {
            self.order.push((crate::host::KIND_ORCHESTRATOR, name.to_string()));
        }
        self
    }

    /// Registers activity `name`: an async fn taking the context and the
    /// decoded input and returning the output to encode as JSON.
    pub fn activity<F, I, O, Fut>(&mut self, name: &str, f: F) -> &mut Registry
    where
        F: Fn(ActivityContext, I) -> Fut + 'static,
        I: DeserializeOwned,
        O: Serialize,
        Fut: Future<Output = Result<O>> + 'static,
    {
        let f: ActFn = Rc::new(move |ctx, input| {
            let fut = from_json::<I>(input).map(|i| f(ctx, i));
            Box::pin(async move {
                let o = fut?.await?;
                encode(&o)
            })
        });
        if self.activities.insert(name.to_string(), f).is_none() {
            self.order.push((crate::host::KIND_ACTIVITY, name.to_string()));
        }
        self
    }

    /// The registered functions: (kind 1 orchestrator / 2 activity, name).
    pub fn functions(&self) -> &[(i32, String)] {
        &self.order
    }
}
