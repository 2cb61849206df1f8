package hello;

import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Properties;
import java.util.TreeMap;

/** Serves the active environment's config, read from $APP_HOME/conf (linked by bootstrap). */
public final class HelloServlet extends HttpServlet {
    private static final String CONF = "/app/conf/application.properties";

    @Override
    protected void doGet(HttpServletRequest request, HttpServletResponse response) throws IOException {
        response.setContentType("text/plain;charset=UTF-8");
        if ("/health".equals(request.getServletPath())) {
            response.getWriter().println("ok");
            return;
        }
        Properties props = new Properties();
        try (InputStreamReader in = new InputStreamReader(new FileInputStream(CONF), StandardCharsets.UTF_8)) {
            props.load(in);
        }
        getServletContext().log("hello-war served " + request.getRequestURI());
        StringBuilder body = new StringBuilder();
        new TreeMap<>(props).forEach((k, v) -> body.append(k).append('=').append(v).append('\n'));
        response.getWriter().print(body);
    }
}
