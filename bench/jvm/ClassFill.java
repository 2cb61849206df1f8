import java.io.InputStream;
import java.lang.invoke.MethodHandles;
import java.util.ArrayList;
import java.util.List;

/** Loads copies of Payload (300 methods) as hidden classes, kept reachable, until OutOfMemoryError. */
public class ClassFill {
    public static void main(String[] args) throws Exception {
        byte[] bytes;
        try (InputStream in = ClassFill.class.getResourceAsStream("/Payload.class")) {
            bytes = in.readAllBytes();
        }
        MethodHandles.Lookup lookup = MethodHandles.lookup();
        List<Class<?>> kept = new ArrayList<>();
        int loaded = 0;
        while (true) {
            Class<?> c = lookup.defineHiddenClass(bytes, true).lookupClass();
            c.getMethod("m1", long.class).invoke(null, 3L);  // link and initialize it
            kept.add(c);
            loaded++;
            if (loaded % 1000 == 0) {
                System.out.println("classes " + loaded);
            }
        }
    }
}
