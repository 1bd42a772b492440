"""The built-in tools by name, importing none of them: the executors name them to the forkserver
without loading pandas into a process that only starts children (a Ray worker).
"""

#: Every built-in tool, as "module:Class".
BUILTIN_TOOLS: tuple[str, ...] = (
    "tools.feature_types:FeatureTypes",
    "tools.coerce_types:CoerceTypes",
    "tools.personal_data:PersonalData",
    "tools.harmonise:HarmoniseCategories",
    "tools.date_features:DateFeatures",
    "tools.drop_columns:DropColumns",
    "tools.drop_rows:DropRows",
    "tools.duplicates:Duplicates",
    "tools.outliers:Outliers",
    "tools.impute:Impute",
    "tools.label_issues:LabelIssues",
    "tools.leakage:Leakage",
    "tools.evaluate:Evaluate",
)
