"""Visual stores: h5 files of VL-T5 region features and of BLIP images, read lazily and safely across processes,
and the converters that build them (LXMERT tsv, links to the official feature files)."""
