"""allot's decomposition on Ray.

The driver is allot itself (`allot plan SCENARIO --solver ray`): it runs the
multiplier update, the network side and the repair LP, the same code as the
single-machine solver. This package is what it starts to reach the customers:
`allot_ray.bridge` connects to a Ray cluster, starts one long-lived actor per
partition (each loads its partition's Parquet files into the Rust kernel,
`allot_ray._kernel`), and relays every request to all of them.
"""
