import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.List;

/**
 * Masked reads through the PostgreSQL JDBC driver in its default modes: a fetch size (row-limited
 * Executes, one portal paged) and a prepared statement past prepareThreshold (5), after which the
 * driver reuses a named statement without describing it. Prints one JSON document.
 */
public class JdbcPaging {
  public static void main(String[] args) throws Exception {
    String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/" + args[1] + "?sslmode=disable";
    try (Connection conn = DriverManager.getConnection(url, args[2], args[3])) {
      List<String> paged = new ArrayList<>();
      conn.setAutoCommit(false);
      try (PreparedStatement st = conn.prepareStatement("SELECT id, ssn, email, score FROM people ORDER BY id")) {
        st.setFetchSize(5);
        try (ResultSet rs = st.executeQuery()) {
          while (rs.next()) paged.add(row(rs.getInt(1), rs.getString(2), rs.getString(3), rs.getInt(4)));
        }
      }
      conn.commit();
      conn.setAutoCommit(true);
      List<String> prepared = new ArrayList<>();
      try (PreparedStatement st = conn.prepareStatement("SELECT id, ssn, email, score FROM people WHERE id = ?")) {
        for (int i = 1; i <= 8; i++) {
          st.setInt(1, i);
          try (ResultSet rs = st.executeQuery()) {
            while (rs.next()) prepared.add(row(rs.getInt(1), rs.getString(2), rs.getString(3), rs.getInt(4)));
          }
        }
      }
      System.out.println("{\"paged\":[" + String.join(",", paged) + "],\"prepared\":[" + String.join(",", prepared) + "]}");
    }
  }

  private static String row(int id, String ssn, String email, int score) {
    return "{\"id\":" + id + ",\"ssn\":" + quote(ssn) + ",\"email\":" + quote(email) + ",\"score\":" + score + "}";
  }

  private static String quote(String value) {
    if (value == null) return "null";
    return "\"" + value.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
  }
}
