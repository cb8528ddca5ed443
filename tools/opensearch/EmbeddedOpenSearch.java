/*
 * Single-node OpenSearch 2.19 started from a flat Maven classpath, for integration tests and
 * local development. No distribution, no build step: run it in single-file source mode,
 *
 *   java -Xms512m -Xmx768m -Dlog4j2.configurationFile=file:tools/opensearch/log4j2.properties \
 *        -cp ".cache/opensearch-lib/*" tools/opensearch/EmbeddedOpenSearch.java HTTP_PORT DATA_DIR [TRANSPORT_PORT]
 *
 * (soc/devstack.py does exactly this). The node binds to 127.0.0.1 only, uses single-node
 * discovery, has the disk-threshold allocator disabled, and loads its modules from the classpath
 * (no modules/ or plugins/ folder, hence no jar-hell check). There is no security plugin: plain
 * HTTP. SIGTERM closes the node cleanly through a shutdown hook.
 */

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;

import org.opensearch.cluster.service.ClusterService;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;

public class EmbeddedOpenSearch {

    /** Modules that a distribution would load from modules/; here they come from the classpath. */
    static final String[] PLUGIN_CLASSES = {
        "org.opensearch.transport.Netty4Plugin",               // transport-netty4-client: HTTP + transport
        "org.opensearch.analysis.common.CommonAnalysisPlugin", // analysis-common: lowercase normalizer etc.
        "org.opensearch.painless.PainlessPlugin",              // lang-painless
        "org.opensearch.index.reindex.ReindexPlugin",          // reindex-client: _reindex, _*_by_query
        "org.opensearch.index.mapper.MapperExtrasPlugin",      // mapper-extras-client: scaled_float, ...
    };

    static final class ClasspathNode extends Node {
        ClasspathNode(Environment env, Collection<Class<? extends Plugin>> plugins) {
            super(env, plugins, true);
        }

        @Override
        protected void configureNodeAndClusterIdStateListener(ClusterService clusterService) {
            // The default feeds node/cluster ids into log4j pattern converters that are only
            // registered by LogConfigurator, which we do not use.
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 2 || args.length > 3) {
            System.err.println("usage: EmbeddedOpenSearch HTTP_PORT DATA_DIR [TRANSPORT_PORT]");
            System.exit(2);
        }
        int httpPort = Integer.parseInt(args[0]);
        Path home = Path.of(args[1]).toAbsolutePath();
        String transportPort = args.length == 3 ? args[2] : "0";
        Path config = Files.createDirectories(home.resolve("config"));
        Files.createDirectories(home.resolve("data"));
        Files.createDirectories(home.resolve("logs"));

        List<Class<? extends Plugin>> plugins = new ArrayList<>();
        for (String name : PLUGIN_CLASSES) {
            try {
                plugins.add(Class.forName(name).asSubclass(Plugin.class));
            } catch (ClassNotFoundException e) {
                // Fail loudly: a missing module makes tests fail in confusing ways later.
                System.err.println("FATAL: OpenSearch module class " + name
                    + " is not on the classpath; re-run the Maven fetch of tools/opensearch/pom.xml");
                System.exit(3);
            }
        }

        Settings settings = Settings.builder()
            .put("cluster.name", "soc-devstack")
            .put("node.name", "soc-devstack-node")
            .put("path.home", home.toString())
            .put("path.data", home.resolve("data").toString())
            .put("path.logs", home.resolve("logs").toString())
            .put("network.host", "127.0.0.1")
            .put("http.port", httpPort)
            .put("transport.port", transportPort)
            .put("discovery.type", "single-node")
            .put("http.type", "netty4")
            .put("transport.type", "netty4")
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .put("action.destructive_requires_name", false)
            .build();

        Environment env = InternalSettingsPreparer.prepareEnvironment(
            settings, Collections.emptyMap(), config, () -> "soc-devstack-node");
        Node node = new ClasspathNode(env, plugins);

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                stopped.countDown();
            }
        }, "opensearch-shutdown"));

        try {
            node.start();
        } catch (Throwable t) {
            System.err.println("FATAL: OpenSearch failed to start");
            t.printStackTrace();
            Runtime.getRuntime().halt(1);
        }
        System.out.println("EmbeddedOpenSearch: started, http://127.0.0.1:" + httpPort);
        stopped.await();
    }
}
