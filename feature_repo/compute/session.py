"""One way to get a Spark session configured for the feature jobs.

The settings that matter for correctness, not just speed: the session time zone is UTC (day boundaries
and date casts), and Parquet timestamps are written as ``TIMESTAMP_MICROS`` with ``isAdjustedToUTC``,
which pyarrow, DuckDB and Feast read as ``timestamp[us, tz=UTC]``. Spark's default (INT96) would be read
as nanoseconds without a time zone.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from pyspark.sql import SparkSession

from aisle.core.errors import AisleError
from aisle.core.settings import Settings, export_env

#: Runtime SQL settings, applied to a reused session too (they are per session, not per JVM).
SQL_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
    "spark.sql.parquet.int96RebaseModeInWrite": "CORRECTED",
    "spark.sql.adaptive.enabled": "true",
}

LOCAL_SHUFFLE_PARTITIONS = 8

# Root at WARN: PySpark counts as a shell, and Spark prints a "default log level" banner when the root
# level differs from the shell's WARN
# (its own logger must not be configured either). The session drops to ERROR once started (see _configure).
_LOG4J = """\
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
logger.hadoop.name = org.apache.hadoop
logger.hadoop.level = error
logger.conf.name = org.apache.spark.SparkConf
logger.conf.level = error
logger.utils.name = org.apache.spark.util.Utils
logger.utils.level = error
"""


def _is_local(master: str) -> bool:
    return master == "local" or master.startswith("local[")


def _log4j_file(spark_dir: Path) -> Path:
    path = spark_dir / "log4j2.properties"
    if not path.exists() or path.read_text() != _LOG4J:
        path.write_text(_LOG4J)
    return path


def _configure(spark: SparkSession, master: str) -> SparkSession:
    for key, value in SQL_CONF.items():
        spark.conf.set(key, value)
    if _is_local(master):
        spark.conf.set("spark.sql.shuffle.partitions", str(LOCAL_SHUFFLE_PARTITIONS))
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def spark_session(settings: Settings) -> SparkSession:
    """The active session if there is one (tests, notebooks, a DAG task), else a new one from settings.

    A reused session keeps its master and memory (those are fixed when its JVM starts) but gets the
    SQL settings above, because the output format depends on them.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        return _configure(active, active.sparkContext.master or "")

    # Python workers run the driver's interpreter (the virtualenv's), not whatever `python3` is on PATH:
    # where the two differ, workers would miss pyarrow/pandas or import other versions of them.
    export_env({"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable})
    spark_dir = settings.paths.home / "spark"
    (spark_dir / "local").mkdir(parents=True, exist_ok=True)
    java_opts = f"-Dlog4j2.configurationFile=file:{_log4j_file(spark_dir)} -Duser.timezone=UTC"
    builder = (
        SparkSession.builder.master(settings.spark_master)
        .appName("aisle-features")
        .config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.driver.extraJavaOptions", java_opts)
        .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.pyspark.python", sys.executable)
        .config("spark.pyspark.driver.python", sys.executable)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.local.dir", str(spark_dir / "local"))
        .config("spark.sql.warehouse.dir", str(spark_dir / "warehouse"))
        # no _SUCCESS marker: readers glob the table directories, a stray file only gets in the way
        .config("spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
    )
    if _is_local(settings.spark_master):
        builder = builder.config("spark.driver.host", "127.0.0.1").config(
            "spark.driver.bindAddress", "127.0.0.1"
        )
    for key, value in SQL_CONF.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: almost always a missing or wrong Java
        hint = "" if shutil.which("java") else " (no `java` on PATH)"
        raise AisleError(
            f"could not start Spark{hint}: it needs Java 17 or newer; install a JDK and put `java` on "
            f"PATH or set JAVA_HOME ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None
    return _configure(spark, settings.spark_master)
