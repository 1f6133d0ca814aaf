"""Scale-out on Spark (an optional extra: ``pip install 'recsys-tf[spark]'``, and Java 17+).

:mod:`~recsys_tf.spark.session` starts a session (``local[*]`` or a cluster);
:mod:`~recsys_tf.spark.pipeline` runs the kit's cleaning, encoding, splits and negative sampling
as Spark jobs with the pandas versions' semantics; ALS is :class:`recsys_tf.models.SparkALS`.
"""

from recsys_tf.spark.session import SparkUnavailable, java_home, require_pyspark, spark_session

__all__ = ["SparkUnavailable", "java_home", "require_pyspark", "spark_session"]
