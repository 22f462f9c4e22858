//! `allot_ray._kernel`: the decomposition's customers' side as a Python module,
//! so that Ray actors can hold a partition of the customers in memory across
//! iterations and answer the driver's requests.
//!
//! There is no solver logic here: a [`Worker`] is an
//! `allot_optimizer::decomposed::customers::PartitionWorker` (the same code the
//! single-machine solver runs over its ranges of customers) loaded from the
//! partition files `allot_scenarios::scenario::partitions` writes. Requests and replies
//! cross Python as opaque bytes.

use std::path::PathBuf;

use allot_optimizer::decomposed::customers::PartitionWorker;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// One partition of customers with its state between requests.
#[pyclass(module = "allot_ray._kernel")]
struct Worker {
    worker: PartitionWorker,
    partition: usize,
}

#[pymethods]
impl Worker {
    /// Loads partition `partition` of the partition directory `directory`.
    #[new]
    fn new(py: Python<'_>, directory: PathBuf, partition: usize) -> PyResult<Self> {
        let part = py
            .detach(|| allot_scenarios::scenario::partitions::read_partition(&directory, partition))
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(Worker { worker: PartitionWorker::new(part), partition })
    }

    /// (customers, candidates) held.
    fn size(&self) -> (usize, usize) {
        self.worker.size()
    }

    /// The partition's index.
    #[getter]
    fn partition(&self) -> usize {
        self.partition
    }

    /// Serves one encoded request and returns the encoded reply (the GIL is
    /// released while the kernel runs).
    fn serve<'py>(&mut self, py: Python<'py>, request: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let request = request.to_vec();
        let reply = py.detach(|| self.worker.serve_bytes(&request)).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        Ok(PyBytes::new(py, &reply))
    }
}

/// The module.
#[pymodule]
fn _kernel(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Worker>()?;
    Ok(())
}
