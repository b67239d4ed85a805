c = get_config()  # noqa: F821  (nbgrader's config loader provides get_config and load_subconfig)
load_subconfig("grader/nbgrader_config.py")  # noqa: F821
