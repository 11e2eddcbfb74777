//! Transport to the compute worker: starting it, sending typed messages
//! (with the user's files beside them, in the order the message names them),
//! holding messages until it is ready, and handing its replies and crashes
//! to a receiver. Knows nothing of what the messages mean.

use cliplens::protocol::{FromWorker, ToWorker};
use js_sys::{Array, Object, Reflect};
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{File, MessageEvent, Worker};

/// What the page hears from a worker.
pub enum Heard {
    Message(FromWorker),
    /// The worker died without a `Crashed` message (an uncaught script error).
    Died(String),
}

struct Link {
    worker: Option<Worker>,
    /// Bumped per worker: events of a replaced worker are ignored.
    generation: u32,
    ready: bool,
    /// Messages sent before the worker was ready.
    waiting: Vec<(ToWorker, Vec<File>)>,
}

#[derive(Clone, Copy)]
pub struct WorkerLink {
    link: StoredValue<Link, LocalStorage>,
}

impl WorkerLink {
    pub fn new() -> Self {
        WorkerLink { link: StoredValue::new_local(Link { worker: None, generation: 0, ready: false, waiting: Vec::new() }) }
    }

    /// Starts a worker (ending any current one); `on_heard` gets its messages.
    pub fn start(self, on_heard: impl Fn(Heard) + Clone + 'static) -> Result<(), String> {
        self.stop();
        let generation = self.link.with_value(|l| l.generation);
        let options = web_sys::WorkerOptions::new();
        options.set_name("cliplens-compute");
        let worker = Worker::new_with_options("./worker_loader.js", &options).map_err(|e| format!("the compute worker could not start: {e:?}"))?;
        let current = move || self.link.try_with_value(|l| l.generation == generation).unwrap_or(false);
        let heard = on_heard.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            if !current() {
                return;
            }
            match serde_wasm_bindgen::from_value::<FromWorker>(event.data()) {
                Ok(message) => heard(Heard::Message(message)),
                Err(e) => web_sys::console::error_1(&format!("page: unreadable worker message: {e}").into()),
            }
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        on_message.forget();
        let on_error = Closure::<dyn FnMut(web_sys::ErrorEvent)>::new(move |event: web_sys::ErrorEvent| {
            event.prevent_default();
            if current() {
                on_heard(Heard::Died(event.message()));
            }
        });
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        on_error.forget();
        self.link.update_value(|l| l.worker = Some(worker));
        Ok(())
    }

    /// Ends the worker (if any); its late messages are ignored.
    pub fn stop(self) {
        self.link.update_value(|l| {
            if let Some(w) = l.worker.take() {
                w.terminate();
            }
            l.generation += 1;
            l.ready = false;
            l.waiting.clear();
        });
    }

    /// The worker said it is ready: send what waited.
    pub fn set_ready(self) {
        let waiting = self.link.try_update_value(|l| {
            l.ready = true;
            std::mem::take(&mut l.waiting)
        });
        for (message, files) in waiting.unwrap_or_default() {
            self.send(message, files);
        }
    }

    /// Sends `message` now, or once the worker is ready (`Init` goes at once).
    pub fn send(self, message: ToWorker, files: Vec<File>) {
        let ready = self.link.with_value(|l| l.ready);
        if !ready && !matches!(message, ToWorker::Init { .. }) {
            self.link.update_value(|l| l.waiting.push((message, files)));
            return;
        }
        let Ok(msg) = serde_wasm_bindgen::to_value(&message) else {
            web_sys::console::error_1(&format!("page: cannot encode {message:?}").into());
            return;
        };
        let list = Array::new();
        for f in files {
            list.push(&f);
        }
        let envelope = Object::new();
        let _ = Reflect::set(&envelope, &"msg".into(), &msg);
        let _ = Reflect::set(&envelope, &"files".into(), &list);
        self.link.with_value(|l| {
            if let Some(w) = &l.worker {
                let _ = w.post_message(&envelope);
            }
        });
    }
}
