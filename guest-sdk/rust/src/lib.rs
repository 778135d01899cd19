//! # durablewasm guest SDK for Rust
//!
//! Write durable orchestrations and activities as `async fn`s, compile them
//! to a `wasm32-wasi` cdylib, and deploy the module with
//! `durablewasm deploy`. See `README.md` in this crate for a walk-through.
//!
//! ```ignore
//! use durablewasm::{ActivityContext, OrchestrationContext, Registry, Result};
//!
//! async fn hello(ctx: OrchestrationContext, _: ()) -> Result<Vec<String>> {
//!     let mut out = Vec::new();
//!     for city in ["Tokyo", "Seattle", "London"] {
//!         out.push(ctx.call_activity("SayHello", city).await?);
//!     }
//!     Ok(out)
//! }
//!
//! async fn say_hello(_: ActivityContext, name: String) -> Result<String> {
//!     Ok(format!("Hello {}!", name))
//! }
//!
//! fn register(r: &mut Registry) {
//!     r.orchestrator("Hello", hello).activity("SayHello", say_hello);
//! }
//!
//! durablewasm::export!(register);
//! ```
//!
//! The orchestration's future is polled by the SDK's own executor on each
//! `orchestrator_start`/`orchestrator_resume`: when it awaits tasks that are
//! not resolved, the executor asks the host (`poll`) and parks by returning
//! from the export. There are no threads and no wakers.

mod activity;
mod combinators;
mod error;
pub mod host;
pub mod http;
mod orchestration;
mod registry;
mod retry;
mod runtime;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod time;

pub use activity::{ActivityContext, HttpFuture};
pub use combinators::{join_all, select, select2, try_join_all, Either, JoinAll, Select, Select2};
pub use error::{Error, ErrorKind, FailureDetails, Result};
pub use orchestration::{OrchestrationContext, Rng, Task};
pub use registry::Registry;
pub use retry::RetryPolicy;
pub use runtime::Runtime;

/// Re-exported for samples and macros.
pub use serde;
pub use serde_json;

/// Defines the module's exports (ABI section 3) over the functions that
/// `$register` (a `fn(&mut Registry)`) registers. Invoke it once, in the
/// root of a `cdylib` crate built for `wasm32-wasi`.
#[macro_export]
macro_rules! export {
    ($register:path) => {
        #[allow(dead_code)]
        fn __durablewasm_register(r: &mut $crate::Registry) {
            $register(r)
        }
        #[cfg(target_arch = "wasm32")]
        mod __durablewasm_exports {
            fn reg(r: &mut $crate::Registry) {
                super::__durablewasm_register(r)
            }
            #[no_mangle]
            pub extern "C" fn durablewasm_abi_version() -> i32 {
                1
            }
            #[no_mangle]
            pub extern "C" fn durablewasm_alloc(size: i32) -> i32 {
                $crate::__private::alloc(size)
            }
            #[no_mangle]
            pub extern "C" fn durablewasm_list_functions() -> i32 {
                $crate::__private::with(reg, |rt| rt.list_functions())
            }
            #[no_mangle]
            pub extern "C" fn durablewasm_orchestrator_start(h: i32, p: i32, n: i32) -> i32 {
                $crate::__private::start(reg, h, p, n)
            }
            #[no_mangle]
            pub extern "C" fn durablewasm_orchestrator_resume(h: i32) -> i32 {
                $crate::__private::with(reg, |rt| rt.resume(h))
            }
            #[no_mangle]
            pub extern "C" fn durablewasm_orchestrator_drop(h: i32) -> i32 {
                $crate::__private::with(reg, |rt| rt.drop_orchestration(h))
            }
            #[no_mangle]
            pub extern "C" fn durablewasm_activity_run(h: i32, p: i32, n: i32) -> i32 {
                $crate::__private::run_activity(reg, h, p, n)
            }
            #[no_mangle]
            pub extern "C" fn durablewasm_activity_resume(h: i32) -> i32 {
                $crate::__private::with(reg, |rt| rt.resume_activity(h))
            }
            #[no_mangle]
            pub extern "C" fn durablewasm_activity_drop(h: i32) -> i32 {
                $crate::__private::with(reg, |rt| rt.drop_activity(h))
            }
        }
    };
}

#[doc(hidden)]
#[cfg(target_arch = "wasm32")]
pub mod __private {
    //! Glue for [`export!`]: one runtime per module instance, the alloc buffer.
    use crate::host::{status, wasm};
    use crate::{Registry, Runtime};
    use std::cell::RefCell;
    use std::rc::Rc;

    thread_local! {
        static RT: RefCell<Option<Runtime>> = RefCell::new(None);
        static BUF: RefCell<Vec<u8>> = RefCell::new(Vec::new());
    }

    /// Runs `f` on the instance's runtime, creating it on first use.
    pub fn with(reg: fn(&mut Registry), f: impl FnOnce(&mut Runtime) -> i32) -> i32 {
        RT.with(|rt| {
            let mut rt = rt.borrow_mut();
            if rt.is_none() {
                let mut r = Registry::new();
                reg(&mut r);
                *rt = Some(Runtime::new(Rc::new(wasm::WasmHost), r));
            }
            f(rt.as_mut().unwrap())
        })
    }

    /// `durablewasm_alloc`: one reusable buffer, valid until the next alloc.
    pub fn alloc(size: i32) -> i32 {
        if size < 0 {
            // Never taken by the host; keeps the sched_yield import.
            wasm::yield_now();
            return 0;
        }
        BUF.with(|b| {
            let mut b = b.borrow_mut();
            let n = (size as usize).max(1);
            if b.len() < n || b.len() > (64 << 10) && n <= (64 << 10) {
                *b = vec![0u8; n];
            }
            b.as_mut_ptr() as i32
        })
    }

    /// Copies the request the host wrote at p/n, which must lie in the buffer.
    fn request(p: i32, n: i32) -> Option<Vec<u8>> {
        if n == 0 {
            return Some(Vec::new());
        }
        BUF.with(|b| {
            let b = b.borrow();
            let base = b.as_ptr() as usize;
            let (p, n) = (p as u32 as usize, n as u32 as usize);
            if p < base || p - base + n > b.len() {
                return None;
            }
            Some(b[p - base..p - base + n].to_vec())
        })
    }

    /// `durablewasm_orchestrator_start`.
    pub fn start(reg: fn(&mut Registry), h: i32, p: i32, n: i32) -> i32 {
        match request(p, n) {
            Some(req) => with(reg, |rt| rt.start(h, &req)),
            None => status::BAD_REQUEST,
        }
    }

    /// `durablewasm_activity_run`.
    pub fn run_activity(reg: fn(&mut Registry), h: i32, p: i32, n: i32) -> i32 {
        match request(p, n) {
            Some(req) => with(reg, |rt| rt.run_activity(h, &req)),
            None => status::BAD_REQUEST,
        }
    }
}
