package hello;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.FileInputStream;
import java.io.FileWriter;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Properties;
import java.util.TreeMap;

/** A tiny HTTP service: serves its active config, logs to $APP_HOME/logs, stops cleanly on SIGTERM. */
public final class Hello {
    private static PrintWriter log;

    private static synchronized void log(String message) {
        log.println(Instant.now() + " " + message);
        log.flush();
    }

    private static Properties config() throws IOException {
        Properties props = new Properties();
        try (InputStreamReader in = new InputStreamReader(new FileInputStream("conf/application.properties"), StandardCharsets.UTF_8)) {
            props.load(in);
        }
        return props;
    }

    private static void reply(HttpExchange exchange, int status, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().set("Content-Type", "text/plain; charset=utf-8");
        exchange.sendResponseHeaders(status, bytes.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(bytes);
        }
    }

    public static void main(String[] args) throws IOException {
        // The working directory is $APP_HOME: conf/ and logs/ are the links bootstrap made.
        log = new PrintWriter(new FileWriter("logs/hello.log", StandardCharsets.UTF_8, true));
        int port = Integer.parseInt(config().getProperty("server.port", "8080"));
        HttpServer server = HttpServer.create(new InetSocketAddress(port), 0);
        server.createContext("/health", exchange -> reply(exchange, 200, "ok\n"));
        server.createContext("/", exchange -> {
            StringBuilder body = new StringBuilder();
            new TreeMap<>(config()).forEach((k, v) -> body.append(k).append('=').append(v).append('\n'));
            log("GET " + exchange.getRequestURI());
            reply(exchange, 200, body.toString());
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            log("stopping");
            server.stop(0);
        }));
        server.start();
        log("started on port " + port);
    }
}
